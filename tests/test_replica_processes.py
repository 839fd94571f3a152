"""Two real bot processes (`python -m bot`, as the Procfile runs it) on one PostgreSQL,
behind one address, with a local Taskcluster process and Pulse on RabbitMQ: one is killed
with SIGKILL while it works; the other takes over. Nothing duplicated, nothing lost."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from bot.localtc.process import PROJECT_ROOT, bot_ready, free_port, local_taskcluster
from bot.localtc.synthetic import generate
from tests.conftest import load_reference_json
from tests.github_standin import GitHubStandIn
from tests.test_github_events import SECRET, signed
from tests.test_pulse import AMQP_URL
from tests.test_store import POSTGRES_URL

TOKEN = "replica-test-token-0123456789"
PULLS = 5
COMMANDS = 120


def start_bot(name: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=PROJECT_ROOT,
        env={**env, "PORT": str(port), "TASKBOT_INSTANCE": name},
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def explain(row: dict[str, object], logs: Path) -> str:
    """A request left open, with what each replica's log says of it."""
    lines = [
        f"{name}: {line}"
        for name in ("a", "b")
        for line in (logs / f"{name}.log").read_text(errors="replace").splitlines()
        if str(row["id"]) in line
    ]
    return f"{row} logged: {lines[-12:]}"


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"taskbot_processes_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        connection = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(run(f"CREATE SCHEMA {name}"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be running for CI at {POSTGRES_URL}: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({error}); CI runs this for real")
    yield name
    asyncio.run(run(f"DROP SCHEMA {name} CASCADE"))


async def test_a_replica_killed_mid_work_loses_and_duplicates_nothing(
    schema: str, tmp_path: Path
) -> None:
    example = load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    repository = example["repository"]["full_name"]
    github = GitHubStandIn()
    runner = web.AppRunner(github.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    github_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    projects = tmp_path / "projects.yaml"
    projects.write_text(
        f"default_project: autoland\nprojects:\n  autoland:\n    repositories: [{repository}]\n"
    )
    synthetic = generate(1500, seed=1)
    fresh = [
        x for x in synthetic.graph if x.startswith("test-") and x not in synthetic.label_to_taskid
    ][:COMMANDS]
    with local_taskcluster(
        "--seed-push", "--tasks", "1500", "--worker", "--amqp-url", AMQP_URL
    ) as tc:
        for number in range(1, PULLS + 1):
            github.heads[(repository, number)] = str(tc.info["revision"])
        github.permissions[(repository, "writer")] = "write"
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            **tc.environment(),
            "DATABASE_URL": f"{POSTGRES_URL}?search_path={schema}",
            "TASKBOT_CONFIG": str(projects),
            "TASKBOT_AMQP_URL": AMQP_URL,
            "TASKBOT_LEASE_SECONDS": "3",
            "TASKBOT_RATE_PER_MINUTE": "1000000",  # a load test: one writer sends it all
            "TASKBOT_API_TOKENS": f"alice:write:{TOKEN}",
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_TOKEN": github.token,
            "GITHUB_API_URL": f"http://127.0.0.1:{github_port}",
            "TASKBOT_DATA_DIR": str(tmp_path / "data"),
        }
        a, url_a = start_bot("replica-a", env, tmp_path / "a.log")
        b, url_b = start_bot("replica-b", env, tmp_path / "b.log")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                await bot_ready(url_a, a, http=http)
                await bot_ready(url_b, b, http=http)
                alive = [url_a, url_b]

                async def send(n: int, label: str) -> None:
                    for attempt in range(30):
                        url = alive[(n + attempt) % len(alive)]
                        try:
                            if n % 2 == 0:  # a pull-request comment
                                data = copy.deepcopy(example)
                                data["comment"].update(body=f"@taskbot schedule {label}", id=n)
                                data["comment"]["user"]["login"] = "writer"
                                data["issue"]["number"] = 1 + n % PULLS
                                data["issue"]["pull_request"] = {"url": "x"}
                                raw = json.dumps(data).encode()
                                headers = {
                                    **signed(raw, "issue_comment"),
                                    "X-GitHub-Delivery": f"d-{n}",
                                }
                                async with http.post(
                                    f"{url}/github/webhook", data=raw, headers=headers
                                ) as response:
                                    if response.status in (200, 202):
                                        return
                            else:  # an API call, retried with its idempotency key
                                headers = {
                                    "Authorization": f"Bearer {TOKEN}",
                                    "Idempotency-Key": f"k-{n}",
                                }
                                async with http.post(
                                    f"{url}/api/v1/commands",
                                    json={"text": f"schedule {label}"},
                                    headers=headers,
                                ) as response:
                                    if response.status == 200:
                                        return
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.2)
                    raise AssertionError(f"command {n} was never accepted")

                gate = asyncio.Semaphore(8)

                async def one(n: int, label: str) -> None:
                    async with gate:
                        await send(n, label)

                load = [asyncio.create_task(one(n, label)) for n, label in enumerate(fresh)]
                await asyncio.sleep(1.5)
                a.send_signal(signal.SIGKILL)  # no goodbye: its holds simply run out
                a.wait()
                alive.remove(url_a)
                await asyncio.gather(*load)

            store = await asyncpg.connect(f"{POSTGRES_URL}?search_path={schema}")
            try:
                deadline = time.monotonic() + 120
                while True:
                    open_requests = await store.fetchval(
                        "SELECT count(*) FROM requests WHERE state NOT IN ('finished')"
                    )
                    pending = await store.fetchval(
                        "SELECT count(*) FROM inbox WHERE processed_at IS NULL"
                    )
                    total = await store.fetchval("SELECT count(*) FROM requests")
                    if not open_requests and not pending and total == len(fresh):
                        break
                    if time.monotonic() > deadline:
                        stuck = await store.fetch(
                            "SELECT * FROM requests WHERE state NOT IN ('finished') LIMIT 3"
                        )
                        raise AssertionError(
                            f"{open_requests} open, {pending} unprocessed, {total} requests: "
                            + "; ".join(explain(dict(row), tmp_path) for row in stuck)
                        )
                    await asyncio.sleep(0.5)
                rows = await store.fetch(
                    "SELECT r.command, count(p.task_id) AS tasks, r.tracker FROM requests r"
                    " JOIN plan_tasks p ON p.request_id = r.id GROUP BY r.id, r.command, r.tracker"
                )
            finally:
                await store.close()
        finally:
            for process in (a, b):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=20)
            await runner.cleanup()
    trackers = [row["tracker"] for row in rows]
    print(f"\nfollowed to the end: {trackers.count('replica-b')} of {len(rows)} by the survivor")
    # one request with one task per label; no label twice
    assert sorted(row["command"] for row in rows) == sorted(f"schedule {x}" for x in fresh)
    assert all(row["tasks"] == 1 for row in rows)
    assert {row["tracker"] for row in rows} <= {"replica-a", "replica-b"}
    cards = [c["body"] for c in github.comments.values() if "task group:" in c["body"]]
    assert len(cards) == len(fresh[::2])  # one card per pull-request command
    assert all("**finished: 1 ok**" in card for card in cards)
    assert b.returncode == 0  # the survivor stopped cleanly on SIGTERM
