"""The bot's HTTP server: health today; webhooks and the API join it in later adapters."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.core.runtime import Runtime
from bot.metrics import ERRORS, exposition

DEFAULT_PORT = 8080


Installer = Callable[[web.Application], None]


def make_app(bot: Runtime, installers: Sequence[Installer] = ()) -> web.Application:
    """The app with /healthz and whatever the configured adapters install (webhooks)."""
    app = web.Application()
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
    bot: Runtime, port: int, host: str = "0.0.0.0", installers: Sequence[Installer] = ()
) -> None:
    """Serve on ``port`` until SIGINT or SIGTERM; in-flight work is then cancelled (and
    resumed from the store on the next start)."""
    runner = web.AppRunner(make_app(bot, installers), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in ("SIGINT", "SIGTERM"):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(getattr(signal, name), stopped.set)
    print(f"taskbot: serving on http://{host}:{port} (SIGTERM stops)", flush=True)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()
