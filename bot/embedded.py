"""The embedded default: a local Taskcluster with a seeded push and a worker, and a bot on it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.adapters.console import ConsoleAdapter
from bot.core.settings import ProjectSettings, Settings
from bot.localtc.seed import SeededPush, register_action_hooks, seed_push
from bot.localtc.server import LocalTaskcluster, serve
from bot.localtc.worker import Rule, SimulatedWorker
from bot.service import Bot
from bot.store import SqliteStore, Store
from bot.tc.clients import TaskclusterSettings, make_clients

# Some jobs fail on the demo push, so `retrigger failed` has something to do.
DEMO_FAILURES = (Rule("*-mochitest-plain-3", "failed"), Rule("*-crashtest-2", "failed"))


def data_dir(env: dict[str, str] | None = None) -> Path:
    """Where the bot keeps its SQLite store: $TASKBOT_DATA_DIR, else the XDG data dir."""
    env = dict(os.environ) if env is None else env
    if env.get("TASKBOT_DATA_DIR"):
        return Path(env["TASKBOT_DATA_DIR"])
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "taskbot"


@dataclass
class Embedded:
    """The pieces of the embedded default, for the console and the tests."""

    tc: LocalTaskcluster
    push: SeededPush
    bot: Bot
    store: Store
    worker: SimulatedWorker | None = None  # ends the tasks; its ``decide`` may be swapped


@contextlib.asynccontextmanager
async def embedded(
    *,
    store: Store | None = None,
    tasks: int = 3000,
    worker_seconds: float = 2.0,
    settings: Settings | None = None,
) -> AsyncIterator[Embedded]:
    """Start everything on loopback; stop it all on exit."""
    import asyncio

    tc = LocalTaskcluster()
    runner = await serve(tc)
    push = seed_push(tc, tasks=tasks)
    register_action_hooks(tc, push)
    stop = asyncio.Event()
    worker = SimulatedWorker(tc.queue, rules=DEMO_FAILURES, seconds=worker_seconds, services=tc)
    working = asyncio.create_task(worker.run(stop))
    own_store = store is None
    if store is None:
        store = SqliteStore(data_dir() / "taskbot.sqlite3")
    await store.migrate()
    credentials = tc.credentials()
    tc_settings = TaskclusterSettings(
        tc.root_url, credentials["clientId"], credentials["accessToken"]
    )
    session = aiohttp.ClientSession()
    settings = settings or Settings(
        default_project=push.project,
        projects={push.project: ProjectSettings(push.project)},
        poll_interval=0.5,
    )
    bot = Bot(settings, store, make_clients(tc_settings, session))
    bot.register(ConsoleAdapter())
    try:
        yield Embedded(tc, push, bot, store, worker)
    finally:
        for task in list(bot.background):
            task.cancel()
        stop.set()
        await working
        await session.close()
        await runner.cleanup()
        if own_store:
            await store.close()
