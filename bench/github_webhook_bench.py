"""GitHub webhook load: signed deliveries at a steady rate on loopback; ack latency and
comment → first createTask latency.

Run: .venv/bin/python bench/github_webhook_bench.py [--rate 200] [--seconds 30] [--commands 0.1]
     [--json PATH]

Everything runs in one process and one event loop (load generator, the bot's HTTP server
and its background processing, the local Taskcluster, a GitHub stand-in), on 2 cores, so
the latencies include the generator's own share of the loop: they are upper bounds.
A share ``--commands`` of the comments carries `@taskbot schedule <job>` (each a job the
push has not run), the rest are ordinary comments.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.adapters.github.app import GitHubAdapter, GitHubSettings
from bot.adapters.github.auth import GitHubAuth
from bot.core.settings import ProjectSettings
from bot.embedded import embedded
from bot.graph.materialize import task_label
from bot.store import SqliteStore
from tests.github_standin import GitHubStandIn

SECRET = "bench-secret"
EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared/reference/github/webhook-examples/issue_comment.created.0.json"
)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main_async(args: argparse.Namespace) -> None:
    example = json.loads(EXAMPLE.read_text())
    repository = example["repository"]["full_name"]
    github = GitHubStandIn()
    github.permissions[(repository, example["comment"]["user"]["login"].lower())] = "write"
    gh_runner, gh_url = await serve(github.app())
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.sqlite3")
        async with (
            embedded(store=store, tasks=3000, worker_seconds=5.0) as env,
            aiohttp.ClientSession() as session,
        ):
            auth = GitHubAuth(session, gh_url, "taskbot-bench", token=github.token)
            project = env.push.project
            env.bot.settings.projects[project] = ProjectSettings(
                project, repositories=(repository,)
            )
            # Poll task states at the production default (the console demo polls faster).
            # One commenter sends every command of the load: no per-person limit here.
            env.bot.settings = replace(
                env.bot.settings, poll_interval=args.poll, rate_per_minute=1_000_000
            )
            adapter = GitHubAdapter(env.bot, GitHubSettings(SECRET, github.token), auth)
            github.heads[(repository, example["issue"]["number"])] = env.push.revision
            created_at: dict[str, float] = {}
            original_create = env.tc.queue.create

            def recording_create(task_id: str, task: dict[str, Any]) -> dict[str, Any]:
                label = task_label(task)
                created_at.setdefault(label, time.perf_counter())
                return original_create(task_id, task)

            env.tc.queue.create = recording_create  # type: ignore[method-assign]
            app = web.Application()
            adapter.install(app)
            bot_runner, bot_url = await serve(app)
            ran = env.push.push.label_to_taskid
            labels = [x for x in env.push.push.graph if x.startswith("test-") and x not in ran]
            sent_at: dict[str, float] = {}
            acks: list[float] = []
            total = int(args.rate * args.seconds)
            every = max(1, round(1 / args.commands)) if args.commands else 0

            async def one(n: int) -> None:
                data = copy.deepcopy(example)
                data["issue"]["pull_request"] = {"url": "x"}
                data["comment"]["id"] = 10_000_000 + n
                label = None
                if every and n % every == 0 and labels:
                    label = labels.pop()
                    data["comment"]["body"] = f"@taskbot schedule {label}"
                else:
                    data["comment"]["body"] = f"Looks good to me ({n})."
                raw = json.dumps(data).encode()
                digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "issue_comment",
                    "X-GitHub-Delivery": f"bench-{n}",
                    "X-Hub-Signature-256": f"sha256={digest}",
                }
                start = time.perf_counter()
                if label:
                    sent_at[label] = start
                async with session.post(
                    f"{bot_url}/github/webhook", data=raw, headers=headers
                ) as response:
                    await response.read()
                    assert response.status == 202, response.status
                acks.append(time.perf_counter() - start)

            begin = time.perf_counter()
            pending = []
            for n in range(total):
                target = begin + n / args.rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.append(asyncio.create_task(one(n)))
            await asyncio.gather(*pending)
            elapsed = time.perf_counter() - begin
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline and (
                await store.unprocessed("github") or len(created_at) < len(sent_at)
            ):
                await asyncio.sleep(0.2)
            first_create = [
                created_at[label] - sent_at[label] for label in sent_at if label in created_at
            ]
            states = Counter(r.state for r in await store.recent_requests(limit=100_000))
            answers = Counter(
                c["body"].split("\n")[0][:60]
                for c in github.comments.values()
                if not c["body"].startswith("[r")
            )
            await bot_runner.cleanup()
        await store.close()
    await gh_runner.cleanup()
    rate = total / elapsed
    print(f"deliveries: {total} in {elapsed:.1f} s ({rate:.0f}/s), {len(sent_at)} with a command")
    p50, p99 = 1000 * statistics.median(acks), 1000 * percentile(acks, 0.99)
    print(f"ack latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal p99 <= 50 ms)")
    print(f"requests by state: {dict(states)}")
    if answers:
        print(f"other answers: {dict(answers.most_common(3))}")
    if first_create:
        print(
            f"comment -> first createTask: p50 {1000 * statistics.median(first_create):.0f} ms, "
            f"p99 {1000 * percentile(first_create, 0.99):.0f} ms (goal p50 <= 250 ms), "
            f"{len(first_create)}/{len(sent_at)} scheduled"
        )
    measures = [
        Measure("deliveries sent", rate, "/s"),
        Measure("ack latency p50", p50, "ms"),
        Measure("ack latency p99", p99, "ms", goal="<= 50"),
    ]
    if first_create:
        measures += [
            Measure(
                "comment -> first createTask p50",
                1000 * statistics.median(first_create),
                "ms",
                goal="<= 250",
            ),
            Measure("comment -> first createTask p99", 1000 * percentile(first_create, 0.99), "ms"),
            Measure("commands scheduled", len(first_create), f"of {len(sent_at)}"),
        ]
    write_json(args.json, "github_webhook_bench", args, measures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between task-state polls")
    parser.add_argument(
        "--commands", type=float, default=0.1, help="share of comments with a command"
    )
    add_json_option(parser)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
