"""The front process: on the bot's public port it receives webhook deliveries (verify, keep
in the inbox, acknowledge) so no acknowledgement waits behind the bot's own work, and
forwards every other request to the bot's process.

Started and watched by the bot (bot/adapters/front_process.py), never by hand:
``python -m bot.adapters.front --fd N --upstream URL --receiver MODULE:FUNCTION
[--sqlite PATH]``. It listens on the socket inherited as ``N``; each ``--receiver`` names a
function of the environment that returns a Receiver (or None); the inbox is the bot's store
(PostgreSQL at DATABASE_URL, else the SQLite file ``--sqlite``). For each delivery it keeps,
it writes the receiver's source and a newline to stdout (the bot then processes its inbox);
it stops on SIGTERM or when its stdin closes (the bot is gone)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from bot import logs
from bot.adapters.bad_requests import quiet_about_bad_requests
from bot.adapters.bodies import read_at_most
from bot.adapters.receiving import Handler, InboxWriter, Receiver, handler
from bot.store import SqliteStore, Store, open_store

log = logging.getLogger(__name__)
MAX_FORWARDED = 25 * 1024 * 1024  # bytes of a forwarded request's body
# A command over the API may load a cold push (seconds, more over a slow network); a health
# check must say soon that the bot does not answer (a stalled bot is then restarted).
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=10)
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
SHUTDOWN_SECONDS = 5.0  # requests in flight at SIGTERM: within the bot's wait for this process
# Headers of one connection, not of the request or the answer (RFC 9110, section 7.6.1),
# and those aiohttp sets itself from what it sends.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def load_receiver(spec: str) -> Receiver | None:
    """The receiver ``module:function`` makes of this process's environment."""
    module, _, function = spec.partition(":")
    make: Callable[[os._Environ[str]], Receiver | None] = getattr(
        importlib.import_module(module), function
    )
    return make(os.environ)


class Announcer:
    """Tells the bot's process, over this process's stdout, that a source's inbox has
    deliveries; a line is left out while an earlier one still waits to be read."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def kept(self, source: str) -> None:
        if self.transport.is_closing() or self.transport.get_write_buffer_size():
            return
        self.transport.write(f"{source}\n".encode())


def end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The headers of a request or an answer that are passed on (every value of each): not
    those of the connection, nor those its Connection header names."""
    named = {
        token.strip().lower()
        for value in CIMultiDict(headers).getall("Connection", [])
        for token in value.split(",")
    }
    dropped = HOP_BY_HOP | named
    return CIMultiDict(
        (name, value) for name, value in headers.items() if name.lower() not in dropped
    )


def unforwardable(headers: Mapping[str, str]) -> str | None:
    """A header whose value holds bytes that are not UTF-8 (aiohttp keeps them as lone
    surrogates, and its client would drop them: the bot would see another value)."""
    for name, value in headers.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name
    return None


def forwarding(upstream: str, session: aiohttp.ClientSession) -> Handler:
    """The handler of every other request: the same request to ``upstream``, its answer
    back; 502 when the bot does not answer."""

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await read_at_most(request, MAX_FORWARDED)
        if body is None:
            return web.json_response({"error": "the request's body is too large"}, status=413)
        odd = unforwardable(request.headers)
        if odd is not None:
            reason = f"the {odd} header holds bytes that are not UTF-8"
            return web.json_response({"error": reason}, status=400)
        headers = end_to_end(request.headers)
        headers.popall("Content-Encoding", None)  # the body was read decompressed
        headers.add("X-Forwarded-For", request.remote or "")
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        try:
            async with session.request(
                request.method,
                upstream + request.rel_url.raw_path_qs,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=HEALTH_TIMEOUT if request.path in HEALTH_PATHS else FORWARD_TIMEOUT,
            ) as answer:
                content = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("the bot did not answer %s %s: %r", request.method, request.path, error)
            return web.json_response(
                {"error": "the bot is not answering; it may be restarting, try again shortly"},
                status=502,
            )
        return web.Response(status=answer.status, body=content, headers=end_to_end(answer.headers))

    return forward


async def serve(
    listening: socket.socket, upstream: str, receivers: Sequence[Receiver], store: Store
) -> None:
    """Serve on ``listening`` until SIGTERM, SIGINT or the end of stdin."""
    loop = asyncio.get_running_loop()
    stdout, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    announcer = Announcer(stdout)
    session = aiohttp.ClientSession(
        timeout=FORWARD_TIMEOUT,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )
    app = web.Application(client_max_size=MAX_FORWARDED)
    for receiver in receivers:
        inbox = InboxWriter(store, receiver.source)

        def kept(source: str = receiver.source) -> None:
            announcer.kept(source)

        app.router.add_post(receiver.path, handler(receiver, inbox, kept))
    app.router.add_route("*", "/{tail:.*}", forwarding(upstream, session))
    quiet_about_bad_requests()
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    await web.SockSite(runner, listening).start()
    stopped = asyncio.Event()
    for name in ("SIGINT", "SIGTERM"):
        loop.add_signal_handler(getattr(signal, name), stopped.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    orphaned = asyncio.create_task(reader.read())  # returns at EOF: the bot is gone
    gc.collect()
    gc.freeze()
    try:
        await asyncio.wait(
            {orphaned, asyncio.create_task(stopped.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        orphaned.cancel()
        await runner.cleanup()
        await session.close()
        stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.adapters.front", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    parser.add_argument("--upstream", required=True, help="the bot's own server, on loopback")
    parser.add_argument("--receiver", action="append", default=[], help="module:function")
    parser.add_argument("--sqlite", help="the bot's SQLite store (without DATABASE_URL)")
    args = parser.parse_args(argv)
    logs.configure(json_lines=True)
    receivers = [r for r in map(load_receiver, args.receiver) if r is not None]
    listening = socket.socket(fileno=args.fd)

    async def run() -> None:
        store = await open_store(os.environ.get("DATABASE_URL"), args.sqlite, migrate=False)
        if isinstance(store, SqliteStore):
            store.leave_checkpoints()
        try:
            await serve(listening, args.upstream, receivers, store)
        finally:
            await store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
