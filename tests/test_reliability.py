"""The system proof: two replicas on one PostgreSQL, Pulse on RabbitMQ, a local Taskcluster
injecting faults, 1,000 mixed commands from GitHub and the HTTP API, one replica killed
halfway. Nothing is scheduled twice, nothing is lost, every request ends with its reply."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web

from bot.adapters.api import ApiAdapter, ApiSettings, ApiToken
from bot.adapters.github.app import GitHubAdapter, GitHubSettings
from bot.adapters.github.auth import GitHubAuth
from bot.adapters.http import make_app
from bot.core.settings import ProjectSettings, Settings
from bot.localtc.events import AmqpPublisher
from bot.localtc.seed import SeededPush, seed_push
from bot.localtc.server import Faults, LocalTaskcluster, serve
from bot.localtc.worker import SimulatedWorker
from bot.service import Bot
from bot.store.base import RequestRecord
from bot.store.postgres import PostgresStore
from bot.tc.clients import TaskclusterSettings, make_clients
from tests.conftest import load_reference_json
from tests.github_standin import GitHubStandIn
from tests.test_github_events import SECRET, signed
from tests.test_pulse import AMQP_URL
from tests.test_store import POSTGRES_URL

WRITER, READER = "writer-token-0123456789", "reader-token-0123456789"
COMMANDS = 1000
SCENARIO_SECONDS = 240  # it takes about 30
LEASE = 3.0  # seconds a replica's hold lasts: the survivor takes over this soon
PULLS = 20
MIX = (
    ("gh-schedule",) * 3
    + ("gh-denied", "gh-read", "gh-bad")
    + ("api-schedule",) * 2
    + ("api-denied", "api-other")
)


class Silent:
    """Where requests resumed without a place of their own report (none here)."""

    async def post(self, text: str) -> str:
        return "0"

    async def react(self, reaction: str) -> None:
        return None


@dataclass
class Replica:
    name: str
    bot: Bot
    store: PostgresStore
    session: aiohttp.ClientSession
    runner: web.AppRunner
    url: str
    sweeper: asyncio.Task[None]
    alive: bool = True

    async def crash(self) -> None:
        """Gone at once, as with SIGKILL: nothing finishes, nothing is handed over."""
        self.alive = False
        self.cut_connections()  # a killed process answers no call it was handling
        self.store._pool.terminate()  # its database connections and its HTTP clients go
        await self.session.close()
        self.sweeper.cancel()
        for task in list(self.bot.background):
            task.cancel()
        runner = self.runner
        runner._shutdown_timeout = 0.01  # no grace for requests in flight
        self.cut_connections()
        await runner.cleanup()

    def cut_connections(self) -> None:
        """Reset every connection to this replica: a handler still running in this (test)
        process after the "crash" must not be able to answer, as a dead process could not."""
        server = self.runner.server
        for handler in list(server.connections if server is not None else ()):
            if handler.transport is not None:
                handler.transport.abort()

    async def stop(self) -> None:
        if self.alive:
            self.alive = False
            self.sweeper.cancel()
            for task in list(self.bot.background):
                task.cancel()
            await self.runner.cleanup()
            await self.store.close()
            await self.session.close()


@dataclass
class System:
    tc: LocalTaskcluster
    push: SeededPush
    github: GitHubStandIn
    github_url: str
    schema: str
    replicas: list[Replica] = field(default_factory=list)

    async def replica(self, name: str) -> Replica:
        store = await PostgresStore.connect(
            POSTGRES_URL, server_settings={"search_path": self.schema}
        )
        await store.migrate()
        session = aiohttp.ClientSession()
        credentials = self.tc.credentials()
        clients = make_clients(
            TaskclusterSettings(
                self.tc.root_url, credentials["clientId"], credentials["accessToken"]
            ),
            session,
        )
        project = self.push.project
        settings = Settings(
            default_project=project,
            projects={project: ProjectSettings(project, repositories=(REPOSITORY,))},
            rate_per_minute=1_000_000,  # a load test: a few people send every command
            poll_interval=0.5,
            amqp_url=AMQP_URL,
        )
        bot = Bot(settings, store, clients, instance=name, lease_seconds=LEASE)
        auth = GitHubAuth(session, self.github_url, "taskbot", token=self.github.token)
        github = GitHubAdapter(bot, GitHubSettings(SECRET, self.github.token), auth)
        api = ApiAdapter(
            bot, ApiSettings({WRITER: ApiToken("alice", "write"), READER: ApiToken("dash", "read")})
        )
        runner = web.AppRunner(make_app(bot, [github.install, api.install]), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sweeper = asyncio.create_task(bot.keep_resuming(Silent()))
        replica = Replica(name, bot, store, session, runner, f"http://127.0.0.1:{port}", sweeper)
        self.replicas.append(replica)
        return replica

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]


REPOSITORY = load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")[
    "repository"
]["full_name"]


@pytest_asyncio.fixture
async def system() -> AsyncIterator[System]:
    try:
        admin = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=5)
        broker = AmqpPublisher(AMQP_URL)
        await asyncio.wait_for(broker.start(), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError, Exception) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL and RabbitMQ must be running for CI: {error}")
        pytest.skip(f"needs PostgreSQL ({POSTGRES_URL}) and RabbitMQ ({AMQP_URL}): {error}")
    schema = f"taskbot_reliability_{secrets.token_hex(4)}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    tc = LocalTaskcluster(publish=broker.publish)
    tc_runner = await serve(tc)
    push = seed_push(tc, tasks=1500)
    stop = asyncio.Event()
    worker = SimulatedWorker(tc.queue, seconds=0.2)
    working = asyncio.create_task(worker.run(stop))
    github = GitHubStandIn()
    github_runner = web.AppRunner(github.app(), access_log=None)
    await github_runner.setup()
    github_site = web.TCPSite(github_runner, "127.0.0.1", 0)
    await github_site.start()
    github_port = github_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for number in range(1, PULLS + 1):
        github.heads[(REPOSITORY, number)] = push.revision
    github.permissions[(REPOSITORY, "writer")] = "write"
    github.permissions[(REPOSITORY, "reader")] = "read"
    system = System(tc, push, github, f"http://127.0.0.1:{github_port}", schema)
    try:
        yield system
    finally:
        for replica in system.replicas:
            await replica.stop()
        stop.set()
        await working
        await github_runner.cleanup()
        await tc_runner.cleanup()
        await broker.stop()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@dataclass
class Sent:
    """One command and what became of it."""

    kind: str  # gh-schedule, gh-denied, gh-read, gh-bad, api-schedule, api-denied, api-other
    payload: str  # the webhook body, or the API command's text
    label: str | None = None
    delivery: str | None = None
    replies: list[str] = field(default_factory=list)  # what the API answered
    log: list[str] = field(default_factory=list)  # each attempt, for failure messages


def comment(body: str, login: str, number: int, comment_id: int) -> bytes:
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    )
    data["comment"].update(body=body, id=comment_id)
    data["comment"]["user"]["login"] = login
    data["issue"]["number"] = number
    data["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{REPOSITORY}/pulls/{number}"
    }
    return json.dumps(data).encode()


async def send(system: System, http: aiohttp.ClientSession, n: int, sent: Sent) -> None:
    """Deliver one command to a live replica, as a load balancer would; when that replica
    dies under it, the sender retries on another (GitHub redelivers; clients retry)."""
    for attempt in range(20):
        alive = system.alive()
        if not alive:
            raise AssertionError(f"command {n}: no replica is alive (the scenario ended)")
        replica = alive[(n + attempt) % len(alive)]
        try:
            if sent.delivery is not None:
                raw = sent.payload.encode()
                headers = {**signed(raw, "issue_comment"), "X-GitHub-Delivery": sent.delivery}
                url = f"{replica.url}/github/webhook"
                async with http.post(url, data=raw, headers=headers) as response:
                    if response.status in (200, 202):
                        return
            else:
                token = READER if sent.kind == "api-denied" else WRITER
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{n}"}
                url = f"{replica.url}/api/v1/commands"
                async with http.post(url, json={"text": sent.payload}, headers=headers) as response:
                    if response.status == 200:
                        answer = await response.json()
                        sent.replies.extend(answer["replies"])
                        sent.log.append(f"{replica.name}: {answer}")
                        return
                    sent.log.append(f"{replica.name}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            sent.log.append(f"{replica.name}: {error!r}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"command {n} could not be delivered")


def stuck(survivor: Replica, pending: int, records: list[RequestRecord]) -> str:
    """What the survivor holds and where its sweep waits, when work is left over."""
    sweep = io.StringIO()
    survivor.sweeper.print_stack(limit=20, file=sweep)
    left = [(r.id, r.state, r.tracker, r.tracked_until, r.updated_at) for r in records[:5]]
    return (
        f"{pending} deliveries unprocessed; open requests {left}; submitting here "
        f"{sorted(survivor.bot.submitting)}; following {sorted(survivor.bot.following)}; "
        f"the sweep: {sweep.getvalue()}"
    )


async def test_two_replicas_under_faults_and_a_crash_lose_nothing_and_duplicate_nothing(
    system: System,
) -> None:
    """The scenario below, watched: a hang fails in minutes, saying where each task waits."""
    scenario = asyncio.create_task(two_replicas_under_faults_and_a_crash(system))
    done, _ = await asyncio.wait({scenario}, timeout=SCENARIO_SECONDS)
    if not done:
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(limit=6, file=stacks)
        scenario.cancel()
        raise AssertionError(f"no end within {SCENARIO_SECONDS} s:\n{stacks.getvalue()[-20000:]}")
    scenario.result()


async def two_replicas_under_faults_and_a_crash(system: System) -> None:
    started = time.monotonic()
    rng = random.Random(20261128)
    push = system.push
    fresh = [
        x for x in push.push.graph if x.startswith("test-") and x not in push.push.label_to_taskid
    ]
    rng.shuffle(fresh)
    await system.replica("replica-a")
    await system.replica("replica-b")
    queue = system.tc.queue.tasks
    before = set(queue)
    system.tc.faults = Faults(error_rate=0.05, reset_rate=0.02, lost_reply_rate=0.02, seed=3)

    sent: list[Sent] = []
    for n in range(COMMANDS):
        kind = [
            "gh-schedule",
            "gh-schedule",
            "gh-schedule",
            "gh-denied",
            "gh-read",
            "gh-bad",
            "api-schedule",
            "api-schedule",
            "api-denied",
            "api-other",
        ][n % 10]
        number = 1 + n % PULLS
        if kind.startswith("gh-"):
            label = fresh.pop() if kind == "gh-schedule" else None
            body, login = {
                "gh-schedule": (f"@taskbot schedule {label}", "writer"),
                "gh-denied": ("@taskbot retrigger failed", "reader"),
                "gh-read": (rng.choice(["@taskbot status", "@taskbot jobs xpcshell"]), "writer"),
                "gh-bad": ("@taskbot shedule mochitest-1", "writer"),
            }[kind]
            payload = comment(body, login, number, 10_000 + n).decode()
            item = Sent(kind, payload, label, f"delivery-{n:04d}")
        else:
            label = fresh.pop() if kind == "api-schedule" else None
            text = {
                "api-schedule": f"schedule {label}",
                "api-denied": f"schedule {fresh[0]}",
                "api-other": rng.choice(["status", "jobs xpcshell", "frobnicate"]),
            }[kind]
            item = Sent(kind, text, label)
        sent.append(item)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            async with gate:
                await send(system, http, n, sent[n])

        first_half = [asyncio.create_task(one(n)) for n in range(COMMANDS // 2)]
        await asyncio.sleep(1.0)
        await system.replicas[0].crash()  # replica-a dies with work in hand
        await asyncio.gather(*first_half)
        await asyncio.gather(*(one(n) for n in range(COMMANDS // 2, COMMANDS)))
        # GitHub redelivers some deliveries (to whichever replica): nothing happens again
        for item in rng.sample([s for s in sent if s.delivery], 50):
            await send(system, http, 0, Sent(item.kind, item.payload, item.label, item.delivery))

    survivor = system.replicas[1]
    store = survivor.store
    deadline = time.monotonic() + 60
    while True:
        pending = await store.unprocessed("github")
        open_requests = await store.requests_in(
            "received", "planned", "submitting", "triggering", "submitted"
        )
        if not pending and not open_requests and await survivor.bot.idle(0.1):
            break
        assert time.monotonic() < deadline, stuck(survivor, len(pending), open_requests)
        await asyncio.sleep(0.5)

    # Nothing scheduled twice: one task per scheduled label, no other new task.
    new = [queue[t] for t in set(queue) - before]
    labels = [task.definition["metadata"]["name"] for task in new]
    scheduled = [s for s in sent if s.kind in ("gh-schedule", "api-schedule")]
    assert sorted(labels) == sorted(s.label for s in scheduled)  # type: ignore[type-var]

    # Nothing lost: every scheduling command has its one request, finished, with its reply.
    requests = await store.recent_requests(limit=10_000)
    assert len(requests) == len(scheduled)
    assert all(r.state == "finished" for r in requests), [
        (r.id, r.state) for r in requests if r.state != "finished"
    ]
    by_label = {r.command: r for r in requests}
    cards = [c["body"] for c in system.github.comments.values()]
    for item in scheduled:
        record = by_label[f"schedule {item.label}"]
        if item.kind == "gh-schedule":
            marker = f"<!-- taskbot:request:{record.id} -->"
            found = [c for c in cards if marker in c and "task group:" in c]
            assert len(found) == 1, (record, found)
            (card,) = found
            assert "**finished: 1 ok**" in card, (record, card)
        else:
            assert any(f"[{record.id}]" in reply for reply in item.replies), (
                record,
                item.payload,
                item.log,
            )
    # Every other command was answered too: denials, reads, parse errors.
    for item in sent:
        if item.kind == "api-denied":
            assert any("may read only" in reply for reply in item.replies), item.replies
        elif item.kind == "api-other":
            assert item.replies, item.payload
    bodies = "\n".join(cards)
    denied = sum(1 for s in sent if s.kind == "gh-denied")
    assert bodies.count("`retrigger` needs write") >= denied
    assert bodies.count("`shedule` is not a command") >= sum(1 for s in sent if s.kind == "gh-bad")
    print(
        f"\n{COMMANDS} commands, {len(scheduled)} scheduled, {len(new)} tasks, "
        f"{time.monotonic() - started:.1f} s"
    )
