"""The front process of a served bot (`python -m bot`, as the Procfile runs it): it owns the
port, receives GitHub's deliveries (verify, keep, acknowledge) and forwards every other
request to the bot's process; it is started again if it dies and stops when the bot dies."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.localtc.process import PROJECT_ROOT, Running, bot_ready, free_port, local_taskcluster
from tests.conftest import load_reference_json
from tests.github_standin import GitHubStandIn
from tests.test_github_events import SECRET, signed

TOKEN = "front-test-token-0123456789"


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    github: GitHubStandIn
    tc: Running
    database: Path
    log: Path
    example: dict[str, object]

    def fronts(self) -> list[int]:
        """The pids of the bot's front processes (children running bot.adapters.front)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1]
            if b"bot.adapters.front" in command and int(parent) == self.process.pid:
                found.append(int(entry.name))
        return found

    def kept(self) -> list[tuple[str, str | None]]:
        """The inbox: each delivery's id and when it was processed."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(
                "SELECT delivery_id, processed_at FROM inbox ORDER BY received_at"
            ).fetchall()


def comment(
    served: Served, body: str, delivery: str, number: int = 1
) -> tuple[bytes, dict[str, str]]:
    data = copy.deepcopy(served.example)
    data["comment"].update(body=body, id=abs(hash(delivery)) % 10**9)  # type: ignore[attr-defined]
    data["comment"]["user"]["login"] = "writer"  # type: ignore[index]
    data["issue"]["number"] = number  # type: ignore[index]
    data["issue"]["pull_request"] = {"url": "x"}  # type: ignore[index]
    raw = json.dumps(data).encode()
    return raw, {**signed(raw, "issue_comment"), "X-GitHub-Delivery": delivery}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as bot:
        yield bot


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **settings: str) -> AsyncIterator[Served]:
    example = load_reference_json("github/webhook-examples/issue_comment.created.0.json")
    repository = example["repository"]["full_name"]
    github = GitHubStandIn()
    runner = web.AppRunner(github.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    projects = tmp_path / "projects.yaml"
    projects.write_text(
        f"default_project: autoland\nprojects:\n  autoland:\n    repositories: [{repository}]\n"
    )
    with local_taskcluster("--seed-push", "--tasks", "600") as tc:
        github.heads[(repository, 1)] = str(tc.info["revision"])
        github.permissions[(repository, "writer")] = "write"
        port = free_port()
        log = tmp_path / "bot.log"
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            **tc.environment(),
            "PORT": str(port),
            "TASKBOT_CONFIG": str(projects),
            "TASKBOT_API_TOKENS": f"alice:write:{TOKEN}",
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_TOKEN": github.token,
            "GITHUB_API_URL": f"http://127.0.0.1:{runner.addresses[0][1]}",
            "TASKBOT_DATA_DIR": str(tmp_path / "data"),
            **settings,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            await bot_ready(url, process)
            database = next((tmp_path / "data").rglob("taskbot.sqlite3"))
            yield Served(url, process, github, tc, database, log, example)
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
            await runner.cleanup()


async def eventually(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def test_the_front_keeps_a_command_and_the_bot_schedules_it(served: Served) -> None:
    (front,) = served.fronts()
    raw, headers = comment(served, "@taskbot schedule --dry-run mochitest-plain", "d-front-1")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{served.url}/github/webhook", data=raw, headers=headers) as r:
            assert r.status == 202, await r.text()
            assert await r.json() == {"msg": "accepted"}
        async with http.post(f"{served.url}/github/webhook", data=raw, headers=headers) as r:
            assert r.status == 200
            assert await r.json() == {"msg": "already received"}
        forged = {**headers, "X-GitHub-Delivery": "d-forged", "X-Hub-Signature-256": "sha256=0"}
        async with http.post(f"{served.url}/github/webhook", data=raw, headers=forged) as r:
            assert r.status == 401
            assert "signature" in (await r.json())["error"]
    # The bot's process was woken and answered on the pull request; the forgery was not kept.
    await eventually(lambda: any(row[1] for row in served.kept()))
    assert [row[0] for row in served.kept()] == ["d-front-1"]
    await eventually(lambda: served.github.comments)
    (reply,) = served.github.comments.values()
    assert "dry run" in reply["body"].lower(), reply["body"]
    assert "mochitest-plain" in reply["body"]
    assert served.fronts() == [front]


async def test_every_other_request_reaches_the_bot_as_sent(served: Served) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["ok"] is True
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        # the API's own answers, status and body, with the query string and the token
        async with http.get(
            f"{served.url}/api/v1/requests?limit=1", headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401
            assert "error" in await r.json()
        async with http.post(
            f"{served.url}/api/v1/commands",
            json={"text": "schedule --dry-run mochitest-plain"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
        assert "dry run" in json.dumps(answer).lower(), answer
        # a compressed body arrives whole (the front reads it decompressed)
        async with http.post(
            f"{served.url}/api/v1/commands",
            data=gzip.compress(json.dumps({"text": "help schedule"}).encode()),
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        ) as r:
            assert r.status == 200, await r.text()
            assert "schedule JOBS" in json.dumps(await r.json())
        async with http.get(f"{served.url}/github/webhook") as r:
            assert r.status == 405  # the bot's own answer to a GET of the webhook
        async with http.get(f"{served.url}/no/such/page") as r:
            assert r.status == 404


async def test_a_front_that_dies_is_started_again_and_the_port_keeps_its_connections(
    served: Served,
) -> None:
    (front,) = served.fronts()
    os.kill(front, signal.SIGKILL)
    raw, headers = comment(served, "Thanks, looks good.", "d-after-kill")
    # Sent at once: the connection waits in the socket's backlog until the new front takes it.
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{served.url}/github/webhook", data=raw, headers=headers) as r,
    ):
        assert r.status == 202
    (again,) = served.fronts()
    assert again != front
    await eventually(lambda: served.kept() and served.kept()[0][1])
    assert "the front process exited" in served.log.read_text()


async def test_the_front_stops_when_the_bot_is_killed(served: Served) -> None:
    (front,) = served.fronts()
    served.process.send_signal(signal.SIGKILL)
    served.process.wait()

    def gone() -> bool:
        try:
            os.kill(front, 0)
        except ProcessLookupError:
            return True
        # a child of a dead parent is reaped by init; until then it may be a zombie
        state = Path(f"/proc/{front}/status").read_text()
        return "zombie" in state

    await eventually(gone, 10)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"{served.url}/healthz"):
                pass


async def test_on_sigterm_the_bot_stops_its_front_and_exits_cleanly(served: Served) -> None:
    (front,) = served.fronts()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0, served.log.read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(front, 0)


async def test_with_the_webhook_process_off_the_bot_receives_deliveries_itself(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, TASKBOT_WEBHOOK_PROCESS="0") as bot:
        assert bot.fronts() == []
        raw, headers = comment(bot, "@taskbot schedule --dry-run mochitest-plain", "d-inline")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{bot.url}/github/webhook", data=raw, headers=headers) as r,
        ):
            assert r.status == 202
        await eventually(lambda: bot.github.comments)
        assert [row[0] for row in bot.kept()] == ["d-inline"]


async def raw_exchange(url: str, request: bytes, *, close_after: bool = False) -> bytes:
    """Send ``request`` as bytes (no client tidies it up) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    if close_after:
        writer.close()
        return b""
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


async def test_a_request_that_is_not_valid_http_is_refused_plainly_and_logged_in_one_line(
    served: Served,
) -> None:
    secret_token = TOKEN.encode()
    broken = (
        b"GET /api/v1/requests HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + secret_token + b"\x01\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(served.url, broken)
    assert answer.split(b" ")[1] == b"400", answer
    assert b"not a valid HTTP request" in answer
    assert secret_token not in answer
    # bytes that are not UTF-8 in a header the bot checks: refused, not changed on the way
    odd = (
        b"GET /api/v1/requests HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe" + secret_token + b"\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(served.url, odd)
    assert answer.split(b" ")[1] == b"400", answer
    assert b"Authorization header holds bytes that are not UTF-8" in answer
    # a client gone halfway through its body (to the webhook and to the bot)
    for path in (b"/github/webhook", b"/api/v1/commands"):
        cut = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"
        await raw_exchange(served.url, cut, close_after=True)
    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/healthz") as r:
        assert r.status == 200  # still serving
    await asyncio.sleep(0.5)
    log = served.log.read_text()
    assert TOKEN not in log
    assert "Traceback" not in log, log[-3000:]
    assert "refused a request that is not valid HTTP (400)" in log


async def test_a_health_check_says_soon_that_a_stalled_bot_does_not_answer(
    served: Served,
) -> None:
    served.process.send_signal(signal.SIGSTOP)
    try:
        began = time.monotonic()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{served.url}/healthz", timeout=aiohttp.ClientTimeout(total=60)) as r,
        ):
            assert r.status == 502
            assert "not answering" in (await r.json())["error"]
        assert time.monotonic() - began < 15
    finally:
        served.process.send_signal(signal.SIGCONT)
