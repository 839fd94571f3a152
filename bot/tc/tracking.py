"""Follow the tasks of a request as they run: Pulse messages, or polling when there are none.

``Tracker.updates`` yields one ``TaskUpdate`` whenever a tracked task changes state. It
listens on the Queue's Pulse exchanges for the task group when a broker is configured and
reachable; otherwise, or when the connection drops, it asks ``queue.status`` at an
interval, so a request is never left without news.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import urllib.parse
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika

log = logging.getLogger(__name__)

EXCHANGE_PREFIX = "exchange/taskcluster-queue/v1/"
STATE_EXCHANGES = (
    "task-pending",
    "task-running",
    "task-completed",
    "task-failed",
    "task-exception",
)
FINAL = frozenset({"completed", "failed", "exception"})


class StatusClient(Protocol):
    async def status(self, taskId: str) -> Any: ...  # noqa: N803


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A task reached a state; ``source`` says whether Pulse or polling told us."""

    task_id: str
    state: str
    run_id: int | None
    source: str


def queue_name(amqp_url: str, task_group_id: str) -> str:
    """A queue name Pulse lets the URL's user declare: ``queue/<user>/...``, one a tracker."""
    user = urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).username or "guest")
    return f"queue/{user}/taskbot/{task_group_id}/{secrets.token_hex(4)}"


def group_binding(task_group_id: str) -> str:
    """The routing-key pattern of every task of a group (taskGroupId is the 9th word)."""
    return "primary." + "*." * 7 + f"{task_group_id}.#"


class TasksLostError(LookupError):
    """The Queue no longer knows the tasks being followed (a local Taskcluster that was
    restarted, tasks expired): following them any longer would wait forever."""

    def __init__(self, count: int) -> None:
        super().__init__(f"the Queue knows none of the {count} tasks still followed")
        self.count = count


@dataclass
class Tracker:
    """The states of a request's tasks, kept current from Pulse or by polling."""

    queue: StatusClient
    task_group_id: str
    task_ids: set[str]
    amqp_url: str | None = None
    other_groups: tuple[str, ...] = ()  # the tasks' other task groups (a backfill's pushes)
    poll_interval: float = 5.0
    poll_concurrency: int = 16
    # With Pulse, the Queue is asked again after this long without a message: a message
    # lost (a broker restart, a binding made late) delays the report, never stalls it.
    resync_interval: float = 60.0
    states: dict[str, str] = field(default_factory=dict)
    source: str = "none"
    # Polls in a row in which the Queue knew none of the unresolved tasks before they count
    # as lost.
    lost_after: int = 3
    _unknown_polls: int = 0

    def summary(self) -> Counter[str]:
        return Counter(self.states.get(t, "unknown") for t in self.task_ids)

    def is_finished(self) -> bool:
        return all(self.states.get(t) in FINAL for t in self.task_ids)

    def _note(self, task_id: str, state: str, run_id: int | None, source: str) -> TaskUpdate | None:
        if task_id not in self.task_ids or self.states.get(task_id) == state:
            return None
        self.states[task_id] = state
        return TaskUpdate(task_id, state, run_id, source)

    async def updates(self) -> AsyncGenerator[TaskUpdate, None]:
        """Every change until all tracked tasks are resolved."""
        # Start from the current states: messages sent before we listened are not lost.
        async for update in self._poll_once():
            yield update
        if self.is_finished():
            return
        if self.amqp_url:
            try:
                # Closed here, not left to the garbage collector: its connection goes now,
                # never in a finalizer the event loop might be shutting down under.
                async with contextlib.aclosing(self._pulse()) as pulse:
                    async for update in pulse:
                        yield update
                        if self.is_finished():
                            return
            except (TimeoutError, aio_pika.exceptions.AMQPError, OSError) as error:
                log.warning("Pulse unavailable (%s); polling instead", error)
        while not self.is_finished():
            await asyncio.sleep(self.poll_interval)
            async for update in self._poll_once():
                yield update

    async def _poll_once(self) -> AsyncGenerator[TaskUpdate, None]:
        """Ask the Queue for every unresolved task, a bounded number at a time."""
        self.source = self.source if self.source == "pulse" else "poll"
        gate = asyncio.Semaphore(self.poll_concurrency)

        unknown: set[str] = set()
        failures: list[str] = []

        async def status_of(task_id: str) -> tuple[str, dict[str, Any] | None]:
            async with gate:
                try:
                    return task_id, (await self.queue.status(task_id))["status"]
                except Exception as error:  # keep polling the others; this one next time
                    if getattr(error, "status_code", None) == 404:
                        unknown.add(task_id)
                    else:
                        failures.append(f"{task_id}: {error}")
                    return task_id, None

        pending = sorted(t for t in self.task_ids if self.states.get(t) not in FINAL)
        answers = await asyncio.gather(*(status_of(t) for t in pending))
        if failures:  # one line a round, however many tasks it failed for
            log.warning(
                "status of %d tasks of %s failed; first: %s",
                len(failures),
                self.task_group_id,
                failures[0],
            )
        self._unknown_polls = self._unknown_polls + 1 if pending and unknown == set(pending) else 0
        if self._unknown_polls >= self.lost_after:
            raise TasksLostError(len(pending))
        for task_id, status in answers:
            if status is None:
                continue
            runs = status.get("runs") or []
            update = self._note(
                task_id, status["state"], runs[-1]["runId"] if runs else None, "poll"
            )
            if update:
                yield update

    async def _pulse(self) -> AsyncGenerator[TaskUpdate, None]:
        assert self.amqp_url is not None
        connection = await asyncio.wait_for(aio_pika.connect(self.amqp_url), timeout=10)
        try:
            channel = await connection.channel()
            # As Pulse allows: a queue under the user's own prefix, and the Queue's
            # exchanges bound passively (only the Queue declares them).
            queue = await channel.declare_queue(
                queue_name(self.amqp_url, self.task_group_id), exclusive=True, auto_delete=True
            )
            groups = dict.fromkeys((self.task_group_id, *self.other_groups))
            for name in STATE_EXCHANGES:
                exchange = await channel.get_exchange(EXCHANGE_PREFIX + name, ensure=True)
                for group in groups:
                    await queue.bind(exchange, routing_key=group_binding(group))
            self.source = "pulse"
            # Anything that changed while binding: ask once more, then trust the messages.
            async for update in self._poll_once():
                yield update
            async with queue.iterator() as messages:
                while True:
                    try:
                        async with asyncio.timeout(self.resync_interval):
                            message = await messages.__anext__()
                    except TimeoutError:
                        async for update in self._poll_once():
                            yield update
                        if self.is_finished():
                            return
                        continue
                    except StopAsyncIteration:
                        return  # the channel closed: the caller polls from here on
                    async with message.process():
                        change = self._from_message(message)
                    if change:
                        yield change
                    if self.is_finished():
                        return
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    def _from_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> TaskUpdate | None:
        try:
            body = json.loads(message.body)
            status = body["status"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed Pulse message on %s", message.routing_key)
            return None
        return self._note(status["taskId"], status["state"], body.get("runId"), "pulse")
