"""GitHub webhook load: signed deliveries at a steady rate on loopback; ack latency against
a bare aiohttp handler's, comment → first createTask latency, and the capacity.

Run: .venv/bin/python bench/github_webhook_bench.py [--rate 200 500] [--pulls 1 100]
     [--seconds 30] [--commands 0.1] [--tasks 20000] [--json PATH]

As deployed: the bot (``python -m bot``, its default SQLite store, its front process
receiving the webhooks), the local Taskcluster and a GitHub stand-in each run in a process
of their own; this process only sends. For each rate and spread (every delivery on one pull
request, or over 100), in the same run: the reference, a bare aiohttp handler in its own
process that verifies the signature and answers 202, under the same load alone; then the
bot, with the same rate of plain comments sent to the bare handler at the same time (a
second reference: what the machine, busy with the bot's work, does to any handler's acks;
printed, not a goal). Goals: ack p99 at most 2x the (first) reference's,
comment → first createTask p50 at most 250 ms (the task's ``created``, stamped as the bot
creates it), and no backlog left (what waited at the end processed within 5 s). Then the
capacity: the rate, doubled from 250/s, up to which the backlog stays bounded (5 s loads
over 100 pull requests). A share ``--commands`` of the comments carries
`@taskbot schedule <job>` (each a job the push has not run); the rest are plain comments.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster.aio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.localtc.process import PROJECT_ROOT, Running, bot_ready, free_port, local_taskcluster

SECRET = "bench-secret"
EXAMPLE = (
    PROJECT_ROOT.parent / "shared/reference/github/webhook-examples/issue_comment.created.0.json"
)

# A process serving one aiohttp app on loopback, printing {"url": ...} once it listens.
SERVER = """
import asyncio, hashlib, hmac, json, sys
sys.path.insert(0, {root!r})
from aiohttp import web

def app():
{make}

async def main():
    runner = web.AppRunner(app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({{"url": f"http://127.0.0.1:{{port}}", **EXTRA}}), flush=True)
    await asyncio.Event().wait()

EXTRA = {{}}
asyncio.run(main())
"""
BARE = """
    async def handler(request):
        body = await request.read()
        expected = "sha256=" + hmac.new({secret!r}.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.Response(status=401)
        return web.Response(status=202)
    application = web.Application()
    application.router.add_post("/github/webhook", handler)
    return application
"""
GITHUB = """
    from tests.github_standin import GitHubStandIn
    github = GitHubStandIn()
    for number in range(1, {pulls} + 1):
        github.heads[({repository!r}, number)] = {revision!r}
    github.permissions[({repository!r}, {login!r})] = "write"
    EXTRA["token"] = github.token
    return github.app()
"""


@contextmanager
def server(make: str) -> Iterator[dict[str, Any]]:
    script = SERVER.format(root=str(PROJECT_ROOT), make=make)
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass
class Run:
    """One load: what was sent, how fast each was acknowledged, what became of commands."""

    rate: float  # asked for
    pulls: int
    sent: int = 0
    seconds: float = 0.0
    acks: list[float] = field(default_factory=list)
    first_create: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)  # label -> wall clock
    backlog_at_end: int = 0  # deliveries not yet processed when the last was acknowledged
    drained_in: float | None = None  # seconds after that until none was left (None: never)

    @property
    def achieved(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def commands(self) -> int:
        return len(self.sent_at)

    def ack(self, share: float) -> float:
        return 1000 * percentile(self.acks, share)

    def bounded(self) -> bool:
        """The backlog stayed bounded: at the end at most half a second's deliveries were
        waiting, all processed within five seconds, and every command was scheduled."""
        return (
            self.backlog_at_end <= self.rate * 0.5
            and self.drained_in is not None
            and self.drained_in <= 5.0
            and len(self.first_create) == self.commands
        )


_NUMBER, _COMMENT, _BODY = 987_654_321, 123_456_789_123, "__the_body__"


def template(example: dict[str, Any]) -> str:
    """The example comment as JSON with stand-ins for what each delivery changes (filled
    in by ``delivery``: the sender's own work stays small next to what it measures)."""
    data = copy.deepcopy(example)
    data["issue"]["number"] = _NUMBER
    data["issue"]["pull_request"] = {"url": "x"}
    data["comment"]["id"] = _COMMENT
    data["comment"]["body"] = _BODY
    text = json.dumps(data)
    assert all(text.count(str(mark)) == 1 for mark in (_NUMBER, _COMMENT, _BODY))
    return text


def delivery(text: str, number: int, comment: int, label: str | None) -> bytes:
    body = f"@taskbot schedule {label}" if label else f"Looks good ({comment})."
    return (
        text.replace(str(_NUMBER), str(number))
        .replace(str(_COMMENT), str(comment))
        .replace(_BODY, json.dumps(body)[1:-1])
        .encode()
    )


SERIAL = itertools.count(1)


async def send_load(
    session: aiohttp.ClientSession,
    url: str,
    run: Run,
    seconds: float,
    text: str,
    commands: float,
    labels: list[str],
) -> None:
    """Deliveries at ``run.rate`` a second for ``seconds``, spread over ``run.pulls`` pull
    requests; every ``1/commands``-th carries a command."""
    total = int(run.rate * seconds)
    every = max(1, round(1 / commands)) if commands else 0

    async def one(n: int) -> None:
        label = labels.pop() if every and n % every == 0 and labels else None
        serial = next(SERIAL)
        raw = delivery(text, 1 + n % run.pulls, 10_000_000 + serial, label)
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": f"bench-{serial}",
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        start = time.perf_counter()
        if label:
            run.sent_at[label] = time.time()
        async with session.post(url, data=raw, headers=headers) as response:
            await response.read()
            assert response.status == 202, response.status
        run.acks.append(time.perf_counter() - start)

    begin = time.perf_counter()
    pending = []
    for n in range(total):
        delay = begin + n / run.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(n)))
    await asyncio.gather(*pending)
    run.sent = total
    run.seconds = time.perf_counter() - begin


def waiting(database: Path) -> int:
    """Deliveries the bot has kept and not processed yet (read beside it: SQLite in WAL)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM inbox WHERE processed_at IS NULL AND parked_at IS NULL"
        ).fetchone()
    return int(count)


async def created_times(tc: Running, group: str) -> dict[str, float]:
    """When each task of the push's group was last created (its ``created``, as the bot
    stamped it right before createTask), by label."""
    queue = taskcluster.aio.Queue(tc.options())
    found: dict[str, float] = {}
    query: dict[str, Any] = {}
    while True:
        page = await queue.listTaskGroup(group, query=query)
        for entry in page["tasks"]:
            task = entry["task"]
            moment = dt.datetime.fromisoformat(task["created"].replace("Z", "+00:00"))
            name = task["metadata"]["name"]  # the latest: earlier bots scheduled it too
            found[name] = max(found.get(name, 0.0), moment.timestamp())
        if not page.get("continuationToken"):
            return found
        query = {"continuationToken": page["continuationToken"]}


@dataclass
class Bot:
    """The bot's process and what the bench needs of it."""

    url: str
    database: Path
    tc: Running
    labels: list[str]  # jobs the push has not run, to schedule
    text: str
    bare_url: str  # the bare handler's, loaded beside the bot


async def load_bot(
    bot: Bot, rate: float, pulls: int, seconds: float, commands: float, beside: Run | None = None
) -> Run:
    """The load on the bot; with ``beside``, the same rate of plain comments to the bare
    handler at the same time (its acks under the load the bot puts on the machine)."""
    run = Run(rate, pulls)
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as other:
        loads = [
            send_load(
                session, f"{bot.url}/github/webhook", run, seconds, bot.text, commands, bot.labels
            )
        ]
        if beside is not None:
            url = f"{bot.bare_url}/github/webhook"
            loads.append(send_load(other, url, beside, seconds, bot.text, 0.0, []))
        await asyncio.gather(*loads)
    ended = time.perf_counter()
    run.backlog_at_end = waiting(bot.database)
    group = str(bot.tc.info["decisionTaskId"])
    created: dict[str, float] = {}
    while time.perf_counter() < ended + 60:
        created = await created_times(bot.tc, group)
        if not waiting(bot.database) and all(label in created for label in run.sent_at):
            run.drained_in = time.perf_counter() - ended
            break
        await asyncio.sleep(0.2)
    run.first_create = [
        created[label] - sent for label, sent in run.sent_at.items() if label in created
    ]
    return run


async def load_bare(url: str, rate: float, pulls: int, seconds: float, text: str) -> Run:
    run = Run(rate, pulls)
    async with aiohttp.ClientSession() as session:
        # A second first, not counted: the server's and the connections' first requests.
        warm_up = Run(rate, pulls)
        await send_load(session, f"{url}/github/webhook", warm_up, 1.0, text, 0.0, [])
        await send_load(session, f"{url}/github/webhook", run, seconds, text, 0.0, [])
    return run


@contextmanager
def running_bot(
    tc: Running, pulls: int, folder: Path, log_path: Path | None, labels: list[str], bare: str
) -> Iterator[Bot]:
    """A bot of its own (a new store), warmed up: one command made it load the push's
    graph (bench/cold_push_bench.py measures a cold push)."""
    folder.mkdir(parents=True)
    example = json.loads(EXAMPLE.read_text())
    repository = example["repository"]["full_name"]
    login = example["comment"]["user"]["login"].lower()
    make = GITHUB.format(
        pulls=pulls, repository=repository, revision=tc.info["revision"], login=login
    )
    with server(make) as github:
        projects = folder / "projects.yaml"
        projects.write_text(
            f"default_project: {tc.info['project']}\nprojects:\n"
            f"  {tc.info['project']}:\n    repositories: [{repository}]\n"
        )
        port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            **tc.environment(),
            "PORT": str(port),
            "TASKBOT_CONFIG": str(projects),
            "TASKBOT_RATE_PER_MINUTE": "1000000",  # one commenter sends the whole load
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_TOKEN": github["token"],
            "GITHUB_API_URL": github["url"],
            "TASKBOT_DATA_DIR": str(folder / "data"),
        }
        log = (log_path or folder / "bot.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(bot_ready(url, process))
            database = next((folder / "data").rglob("taskbot.sqlite3"))
            bot = Bot(url, database, tc, list(labels), template(example), bare)
            asyncio.run(load_bot(bot, 1.0, 1, 1.0, 1.0))
            yield bot
        finally:
            process.terminate()
            process.wait()


async def artifact(tc: Running, name: str) -> bytes:
    group = tc.info["decisionTaskId"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{tc.root_url}/api/queue/v1/task/{group}/artifacts/{name}") as response,
    ):
        return await response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[200.0, 500.0], help="deliveries per second"
    )
    parser.add_argument(
        "--pulls", type=int, nargs="+", default=[1, 100], help="pull requests they are spread over"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load")
    parser.add_argument(
        "--commands", type=float, default=0.1, help="share of comments with a command"
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks of the seeded push")
    parser.add_argument("--capacity-from", type=float, default=250.0)
    parser.add_argument("--capacity-to", type=float, default=4000.0)
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    parser.add_argument("--bot-log", type=Path, help="keep the bot's log here")
    add_json_option(parser)
    args = parser.parse_args()
    example = json.loads(EXAMPLE.read_text())
    text = template(example)
    measures: list[Measure] = []
    print(
        f"{'rate/s':>7} {'pulls':>5} {'sent/s':>7} {'ack p50':>8} {'ack p99':>8} "
        f"{'bare p99':>8} {'ratio':>6} {'beside':>8} {'ratio':>6} {'cmd p50':>8} {'cmd p99':>8} "
        f"{'cmds':>9} {'backlog':>7} {'drained':>7}"
    )
    with (
        tempfile.TemporaryDirectory() as temporary,
        local_taskcluster("--seed-push", "--tasks", str(args.tasks)) as tc,
        server(BARE.format(secret=SECRET)) as bare,
    ):
        graph = json.loads(asyncio.run(artifact(tc, "public/full-task-graph.json")))
        ran = json.loads(asyncio.run(artifact(tc, "public/label-to-taskid.json")))
        labels = [x for x in graph if x.startswith("test-") and x not in ran]
        del graph
        folders = (Path(temporary) / f"bot-{n}" for n in itertools.count())
        # Each load on a bot of its own: what one left behind (requests it follows, a
        # backlog) does not weigh on the next.
        for rate in args.rate:
            for pulls in args.pulls:
                reference = asyncio.run(load_bare(bare["url"], rate, pulls, args.seconds, text))
                beside = Run(rate, pulls)
                folder = next(folders)
                with running_bot(tc, pulls, folder, args.bot_log, labels, bare["url"]) as bot:
                    run = asyncio.run(
                        load_bot(bot, rate, pulls, args.seconds, args.commands, beside)
                    )
                measures += report(run, reference, beside)
        capacity = 0.0
        rate = args.capacity_from
        while rate <= args.capacity_to:
            with running_bot(tc, 100, next(folders), args.bot_log, labels, bare["url"]) as bot:
                run = asyncio.run(load_bot(bot, rate, 100, args.capacity_seconds, args.commands))
            bounded = run.bounded()
            drained = "never" if run.drained_in is None else f"{run.drained_in:.1f} s"
            print(
                f"capacity probe: {rate:.0f}/s asked, {run.achieved:.0f}/s sent, backlog "
                f"{run.backlog_at_end} at the end, drained in {drained}: "
                f"{'bounded' if bounded else 'grows'}"
            )
            if not bounded:
                break
            capacity = run.achieved
            rate *= 2
    print(f"capacity: {capacity:.0f} deliveries/s (the highest rate tried with a bounded backlog)")
    measures.append(Measure("capacity (bounded backlog), 100 pull requests", capacity, "/s"))
    write_json(args.json, "github_webhook_bench", args, measures)


def report(run: Run, reference: Run, beside: Run) -> list[Measure]:
    ratio = run.ack(0.99) / reference.ack(0.99)
    ratio_beside = run.ack(0.99) / beside.ack(0.99)
    p50 = 1000 * statistics.median(run.first_create) if run.first_create else float("nan")
    p99 = 1000 * percentile(run.first_create, 0.99)
    drained = f"{run.drained_in:.1f}s" if run.drained_in is not None else "never"
    print(
        f"{run.rate:7.0f} {run.pulls:5d} {run.achieved:7.0f} {run.ack(0.5):6.1f}ms "
        f"{run.ack(0.99):6.1f}ms {reference.ack(0.99):6.1f}ms {ratio:5.2f}x "
        f"{beside.ack(0.99):6.1f}ms {ratio_beside:5.2f}x "
        f"{p50:6.0f}ms {p99:6.0f}ms {len(run.first_create):4d}/{run.commands:<4d} "
        f"{run.backlog_at_end:7d} {drained:>7}",
        flush=True,
    )
    where = f"{run.rate:g}/s over {run.pulls} pull request{'s' if run.pulls > 1 else ''}"
    return [
        Measure(
            f"ack p99, {where}",
            run.ack(0.99),
            "ms",
            "a bare aiohttp handler (signature, 202)",
            reference.ack(0.99),
            ratio,
            "x the time",
            "<= 2",
        ),
        Measure(
            f"ack p99, {where}, against the bare handler loaded beside the bot",
            run.ack(0.99),
            "ms",
            "a bare aiohttp handler, the same load at the same time",
            beside.ack(0.99),
            ratio_beside,
            "x the time",
        ),
        Measure(f"comment -> first createTask p50, {where}", p50, "ms", goal="<= 250"),
        Measure(
            f"backlog bounded (left waiting: {run.backlog_at_end}), {where}",
            1.0 if run.bounded() else 0.0,
            "yes",
            goal=">= 1",
        ),
    ]


if __name__ == "__main__":
    main()
