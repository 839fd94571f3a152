"""Receiving webhook deliveries: verify, keep in the store's inbox, acknowledge; the same
handler serves in the bot's own process and in its front process (bot/adapters/front.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.adapters.bodies import header, read_at_most
from bot.core.batching import Batcher
from bot.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_SECONDS = 10
OFF_LOOP = 256 * 1024  # bytes: a bigger delivery is verified and decoded in a thread


class DeliveryRejectedError(Exception):
    """A delivery the bot will not keep: the HTTP status to answer and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Received:
    """A verified delivery to keep: its id (a redelivery has the same), event and payload
    as kept (JSON text); or ``answer``: what to reply without keeping it (a ping)."""

    delivery_id: str = ""
    event: str = ""
    payload: str = ""
    answer: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    """What a platform's webhook needs: its path, the inbox source its deliveries are kept
    under, the largest body it sends, and how a delivery is verified and read (no I/O;
    raises DeliveryRejectedError)."""

    path: str
    source: str
    max_body: int
    read: Callable[[Mapping[str, str], bytes], Received]
    platform: str  # for people: "GitHub"


class InboxWriter:
    """Deliveries kept in the store before they are acknowledged (so none is lost), in few
    transactions under load (Batcher), each stamped with when it arrived."""

    def __init__(self, store: Store, source: str) -> None:
        self.store = store
        self.source = source
        self._batcher: Batcher[tuple[str, str, str, str], bool] = Batcher(self._write)
        self._last = ""

    async def keep(self, delivery_id: str, event: str, payload: str) -> bool:
        """Whether the delivery was new (False: kept before, a redelivery)."""
        return await self._batcher((delivery_id, event, payload, self._arrived()))

    async def _write(self, rows: list[tuple[str, str, str, str]]) -> list[bool]:
        return await self.store.keep_deliveries(self.source, rows)

    def _arrived(self) -> str:
        """Now, to the microsecond, and after the last one: the order deliveries came in
        is the order they are processed in."""
        moment = now_text_precise()
        self._last = moment if moment > self._last else _after(self._last)
        return self._last


def now_text_precise() -> str:
    """Now as the store writes times, to the microsecond (they sort with its other times)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _after(moment: str) -> str:
    later = dt.datetime.fromisoformat(moment.removesuffix("Z")) + dt.timedelta(microseconds=1)
    return later.isoformat(timespec="microseconds") + "Z"


def handler(receiver: Receiver, inbox: InboxWriter, kept: Callable[[], None]) -> Handler:
    """The aiohttp handler of ``receiver``'s path: a delivery verified and kept is answered
    202 and ``kept`` is called (whoever processes the inbox is woken); a redelivery 200."""

    async def receive(request: web.Request) -> web.Response:
        body = await read_at_most(request, receiver.max_body)
        if body is None:
            reason = (
                f"a delivery is at most {receiver.max_body // 2**20} MB, "
                f"as {receiver.platform} sends them"
            )
            log.warning("rejected a %s delivery: %s", receiver.platform, reason)
            return web.json_response({"error": reason}, status=413)
        headers = {name: header(request, name) for name in request.headers}
        try:
            # A big payload is read off the event loop (24 MB of JSON takes seconds).
            if len(body) > OFF_LOOP:
                received = await asyncio.to_thread(receiver.read, headers, body)
            else:
                received = receiver.read(headers, body)
        except DeliveryRejectedError as rejected:
            log.warning("rejected a %s delivery: %s", receiver.platform, rejected.reason)
            return web.json_response({"error": rejected.reason}, status=rejected.status)
        if received.answer is not None:
            return web.json_response(dict(received.answer))
        try:
            new = await inbox.keep(received.delivery_id, received.event, received.payload)
        except Exception as error:  # the store is down or locked: the sender tries again
            log.warning(
                "could not keep %s delivery %s: %r", receiver.platform, received.delivery_id, error
            )
            return web.json_response(
                {"error": "the delivery could not be kept just now; send it again shortly"},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if not new:
            return web.json_response({"msg": "already received"})
        kept()
        return web.json_response({"msg": "accepted"}, status=202)

    return receive
