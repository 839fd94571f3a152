"""A cold push: command -> plan on a push whose graph is not loaded, against its download alone.

Run: .venv/bin/python bench/cold_push_bench.py [--tasks 40000] [--mbps 50] [--repeat 3]
     [--json PATH]

The local Taskcluster runs in its own process with one seeded push (its artifacts indented
and gzipped as taskgraph and the workers write them), once on loopback and once paced to
``--mbps`` megabytes a second (a real network). In each, measured in the same run:
- the reference: downloading full-task-graph.json and label-to-taskid.json, both at once,
  bodies read (and so gunzipped) as any client must;
- ours: a new command on the push with nothing cached — find the decision task in the
  Index, read the graph and what the push ran (``load_push``'s two downloads), resolve and
  plan a 10-selector command. Goal: at most 1.5x the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.graph_bench import command_for
from bench.results import Measure, add_json_option, write_json
from bot.graph import GraphCache, Resolver, TaskGraphIndex, plan
from bot.tc.clients import TaskclusterSettings, make_clients
from bot.tc.decision import DecisionReader
from grammar import Schedule, parse_command

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ("public/full-task-graph.json", "public/label-to-taskid.json")


def start_server(tasks: int, mbps: float | None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    command = [sys.executable, "-m", "bot", "localtc", "--seed-push", "--tasks", str(tasks)]
    if mbps:
        command += ["--artifact-mbps", str(mbps)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())


async def download(session: aiohttp.ClientSession, root: str, decision: str) -> int:
    """Both artifacts at once, read whole (decoded), through the Queue's 303."""

    async def one(name: str) -> int:
        async with session.get(f"{root}/api/queue/v1/task/{decision}/artifacts/{name}") as got:
            got.raise_for_status()
            return len(await got.read())

    return sum(await asyncio.gather(*(one(name) for name in ARTIFACTS)))


async def command_to_plan(session: aiohttp.ClientSession, info: dict[str, Any], text: str) -> int:
    """A command on the push, as the bot runs it, with nothing of the push cached."""
    clients = make_clients(
        TaskclusterSettings(info["rootUrl"], info["clientId"], info["accessToken"]), session
    )
    reader = DecisionReader(clients.index, clients.queue, session, GraphCache())
    command = parse_command(text)
    assert isinstance(command, Schedule)
    decision = await reader.find(info["project"], info["revision"])
    graph, existing = await asyncio.gather(
        reader.graph(decision), reader.merged_labels(decision, info["project"])
    )
    labels = Resolver(graph, command.filters).resolve(command.selectors).labels
    planned = await asyncio.to_thread(plan, graph, labels, existing, request_id="rcold")
    return len(planned.create)


async def measure(info: dict[str, Any], repeat: int) -> tuple[float, float, int, str]:
    root, decision = info["rootUrl"], info["decisionTaskId"]
    async with aiohttp.ClientSession() as session:
        size = await download(session, root, decision)  # the server gzips once: not timed
        graph_url = f"{root}/api/queue/v1/task/{decision}/artifacts/{ARTIFACTS[0]}"
        async with session.get(graph_url) as got:
            text = command_for(TaskGraphIndex(await got.read()))
        references, ours = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            await download(session, root, decision)
            references.append(time.perf_counter() - started)
            started = time.perf_counter()
            await command_to_plan(session, info, text)
            ours.append(time.perf_counter() - started)
    return min(references), min(ours), size, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--mbps", type=float, default=50.0, help="the paced network's rate")
    parser.add_argument("--repeat", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    measures = []
    for network, mbps in (("loopback", None), (f"{args.mbps:g} MB/s", args.mbps)):
        server, info = start_server(args.tasks, mbps)
        try:
            reference, ours, size, text = asyncio.run(measure(info, args.repeat))
        finally:
            server.terminate()
            server.wait()
        ratio = ours / reference
        print(
            f"{network}: {args.tasks:,} tasks, {size / 1e6:.0f} MB of artifacts (decoded); "
            f"download {reference:.2f} s; command -> plan {ours:.2f} s: {ratio:.2f}x "
            f"(goal <= 1.5)"
        )
        measures.append(
            Measure(
                f"cold push, command -> plan ({network})",
                ours,
                "s",
                "download of the two artifacts",
                reference,
                ratio,
                "x the time",
                "<= 1.5",
            )
        )
    print(f"command: {text}")
    write_json(args.json, "cold_push_bench", args, measures)


if __name__ == "__main__":
    main()
