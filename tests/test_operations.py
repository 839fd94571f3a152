"""What operators watch: readiness, Prometheus metrics, JSON log lines with request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.console import ConsoleReplier
from bot.adapters.http import make_app
from bot.core.request import Request
from bot.embedded import Embedded, embedded
from bot.localtc.server import Faults
from bot.logs import JsonFormatter
from bot.store import SqliteStore

Served = tuple[Embedded, TestClient[web.Request, web.Application]]


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=600, worker_seconds=0.05) as env:
        env.bot.settings = replace(env.bot.settings, poll_interval=0.05)
        async with TestClient(TestServer(make_app(env.bot))) as client:
            yield env, client
    await store.close()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


async def test_ready_only_when_the_store_and_taskcluster_answer(served: Served) -> None:
    env, client = served
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"ready": True, "problems": {}})
    env.tc.faults = Faults(error_rate=1.0, only="/api/queue/v1/ping")
    env.bot.clients.queue.options["maxRetries"] = 0
    down = await client.get("/readyz")
    assert down.status == 503
    assert "taskcluster" in (await down.json())["problems"]


async def test_metrics_count_commands_and_created_tasks(served: Served) -> None:
    env, client = served
    before = await (await client.get("/metrics")).text()
    ran = env.push.push.label_to_taskid
    label = next(x for x in env.push.push.graph if x.startswith("test-") and x not in ran)
    out = io.StringIO()
    text = f"schedule {label}\nshedule x\nstatus"
    await env.bot.handle(
        Request(source="console", actor="me", place="console", text=text, direct=True),
        ConsoleReplier(out),
    )
    assert await env.bot.idle(30)
    after = await (await client.get("/metrics")).text()
    for labels, grew in [
        ({"source": "console", "verb": "schedule", "outcome": "ok"}, 1),
        ({"source": "console", "verb": "?", "outcome": "parse_error"}, 1),
        ({"source": "console", "verb": "status", "outcome": "ok"}, 1),
    ]:
        assert (
            metric(after, "taskbot_commands_total", **labels)
            - metric(before, "taskbot_commands_total", **labels)
            == grew
        )
    assert (
        metric(after, "taskbot_tasks_created_total") - metric(before, "taskbot_tasks_created_total")
        == 1
    )
    assert metric(after, "taskbot_schedule_seconds_count") >= 1


def test_log_lines_are_json_with_the_request_being_handled() -> None:
    from bot.logs import current_request

    record = logging.LogRecord("bot.x", logging.WARNING, __file__, 1, "took %s", ("long",), None)
    token = current_request.set("delivery-42")
    try:
        line = JsonFormatter().format(record)
    finally:
        current_request.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "took long"
    assert (entry["level"], entry["logger"], entry["request"]) == (
        "warning",
        "bot.x",
        "delivery-42",
    )
    assert entry["time"].endswith("Z")
