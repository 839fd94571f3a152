"""A running local Taskcluster for a test, with the official client pointed at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
import slugid
import taskcluster.aio as tc_aio

from bot.localtc.server import Faults, LocalTaskcluster, serve


@dataclass
class Clock:
    """A clock the test moves; starts at the real time."""

    offset: float = 0.0

    def __call__(self) -> float:
        return dt.datetime.now(dt.UTC).timestamp() + self.offset


@dataclass
class Running:
    """The service, what it published, and a client session."""

    tc: LocalTaskcluster
    session: aiohttp.ClientSession
    clock: Clock
    events: list[tuple[str, str, list[str], dict[str, Any]]] = field(default_factory=list)

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"rootUrl": self.tc.root_url, "credentials": self.tc.credentials(), **extra}

    def queue(self, **extra: Any) -> tc_aio.Queue:
        return tc_aio.Queue(self.options(**extra), session=self.session)

    def index(self, **extra: Any) -> tc_aio.Index:
        return tc_aio.Index(self.options(**extra), session=self.session)


def when(seconds: float = 0, clock: Clock | None = None) -> str:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds + (clock.offset if clock else 0))
    return now.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def task_definition(**fields: Any) -> dict[str, Any]:
    """A small valid task definition; ``fields`` override or add."""
    return {
        "created": when(),
        "deadline": when(3600),
        "provisionerId": "proj-test",
        "workerType": "linux",
        "payload": {"command": ["true"]},
        "metadata": {
            "name": "a test task",
            "description": "made by the tests",
            "owner": "someone@example.com",
            "source": "https://example.com/tests",
        },
        **fields,
    }


def new_id() -> str:
    return str(slugid.nice())


async def start(faults: Faults | None = None) -> Running:
    clock = Clock()
    events: list[tuple[str, str, list[str], dict[str, Any]]] = []
    tc = LocalTaskcluster(
        publish=lambda exchange, key, cc, message: events.append((exchange, key, cc, message)),
        faults=faults or Faults(),
        clock=clock,
    )
    runner = await serve(tc)
    running = Running(tc, aiohttp.ClientSession(), clock, events)
    running.runner = runner  # type: ignore[attr-defined]
    return running


async def stop(running: Running) -> None:
    await running.session.close()
    await running.runner.cleanup()  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def local_tc() -> AsyncIterator[Running]:
    running = await start()
    try:
        yield running
    finally:
        await stop(running)
