"""Where the local Queue's Pulse messages go: subscribers in the process, or RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aio_pika

log = logging.getLogger(__name__)

Listener = Callable[[str, str, list[str], dict[str, Any]], None]


class InProcessBus:
    """Hands every message to the listeners registered in this process."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    def publish(
        self, exchange: str, routing_key: str, cc: list[str], message: dict[str, Any]
    ) -> None:
        for listener in list(self.listeners):
            listener(exchange, routing_key, cc, message)


# The exchanges the Queue declares when it starts (queue/v1/exchanges.json): clients,
# whose Pulse permissions do not let them declare these, bind to them passively.
QUEUE_EXCHANGES = tuple(
    "exchange/taskcluster-queue/v1/" + name
    for name in (
        "task-defined",
        "task-pending",
        "task-running",
        "artifact-created",
        "task-completed",
        "task-failed",
        "task-exception",
        "task-group-resolved",
        "task-group-sealed",
        "task-priority-changed",
        "task-group-priority-changed",
    )
)


class AmqpPublisher:
    """Publishes to topic exchanges on RabbitMQ as the Queue does, CC keys included.

    ``publish`` may be called from synchronous code in the event loop; messages are sent
    in order by a background task, and ``stop`` sends what is still waiting.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pending: asyncio.Queue[tuple[str, str, list[str], dict[str, Any]] | None] = (
            asyncio.Queue()
        )
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel()
        for name in QUEUE_EXCHANGES:
            await self._exchange(name)
        self._task = asyncio.create_task(self._send_all())

    def publish(
        self, exchange: str, routing_key: str, cc: list[str], message: dict[str, Any]
    ) -> None:
        self._pending.put_nowait((exchange, routing_key, cc, message))

    async def _exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchanges[name]

    async def _send_all(self) -> None:
        while (item := await self._pending.get()) is not None:
            exchange_name, routing_key, cc, message = item
            try:
                exchange = await self._exchange(exchange_name)
                await exchange.publish(
                    aio_pika.Message(
                        json.dumps(message).encode(),
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers={"CC": list(cc)} if cc else None,
                    ),
                    routing_key=routing_key,
                )
            except aio_pika.exceptions.AMQPError as error:
                log.warning("could not publish to %s: %s", exchange_name, error)

    async def stop(self) -> None:
        if self._task is not None:
            self._pending.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._task, timeout=10)
        if self._connection is not None:
            await self._connection.close()
