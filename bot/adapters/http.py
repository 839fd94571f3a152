"""The bot's HTTP server: health today; webhooks and the API join it in later adapters."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from bot.adapters import front_process
from bot.adapters.bad_requests import quiet_about_bad_requests
from bot.adapters.front_process import Fronted
from bot.core.runtime import Runtime
from bot.metrics import ERRORS, exposition
from bot.store import SqliteStore

DEFAULT_PORT = 8080


Installer = Callable[[web.Application], None]


@web.middleware
async def _nosniff(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every answer says what it is, and browsers must not guess otherwise."""
    response: web.StreamResponse = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def make_app(bot: Runtime, installers: Sequence[Installer] = ()) -> web.Application:
    """The app with /healthz and whatever the configured adapters install (webhooks)."""
    quiet_about_bad_requests()
    app = web.Application(middlewares=[_nosniff])
    for install in installers:
        install(app)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "inFlight": len(bot.background)})

    async def readyz(request: web.Request) -> web.Response:
        """Ready when the store answers and Taskcluster's Queue answers its ping."""
        problems = {}
        try:
            async with bot.store.transaction() as db:
                await db.fetch("SELECT 1 AS one")
        except Exception as error:
            ERRORS.labels("store").inc()
            problems["store"] = type(error).__name__
        try:
            await asyncio.wait_for(bot.clients.queue.ping(), timeout=5)
        except Exception as error:
            ERRORS.labels("taskcluster").inc()
            problems["taskcluster"] = type(error).__name__
        status = 503 if problems else 200
        return web.json_response({"ready": not problems, "problems": problems}, status=status)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=exposition(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_until_stopped(
    bot: Runtime,
    port: int,
    host: str = "0.0.0.0",
    installers: Sequence[Installer] = (),
    fronted: Sequence[Fronted] = (),
) -> None:
    """Serve on ``port`` until SIGINT or SIGTERM; in-flight work is then cancelled (and
    resumed from the store on the next start). With ``fronted`` webhooks (and unless
    TASKBOT_WEBHOOK_PROCESS=0), a front process owns the port: it receives them and
    forwards the rest here, to a server on loopback."""
    runner = web.AppRunner(make_app(bot, installers), access_log=None)
    await runner.setup()
    try:
        await _serve(bot, runner, host, port, fronted)
    finally:
        await runner.cleanup()


async def _serve(
    bot: Runtime, runner: web.AppRunner, host: str, port: int, fronted: Sequence[Fronted]
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if fronted and front_process.wanted(os.environ):
            listening = front_process.listen(host, port)
            stack.callback(listening.close)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            upstream = f"http://127.0.0.1:{runner.addresses[0][1]}"
            sqlite = bot.store.path if isinstance(bot.store, SqliteStore) else None
            await stack.enter_async_context(
                front_process.FrontProcess(listening, upstream, fronted, sqlite)
            )
        else:
            await web.TCPSite(runner, host, port).start()
        await _until_stopped(host, port)


async def _until_stopped(host: str, port: int) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in ("SIGINT", "SIGTERM"):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(getattr(signal, name), stopped.set)
    # What start-up made (modules, settings, clients) lives as long as the process: kept out
    # of the cyclic collector's scans, whose full passes otherwise stall every request.
    gc.collect()
    gc.freeze()
    print(f"taskbot: serving on http://{host}:{port} (SIGTERM stops)", flush=True)
    await stopped.wait()
