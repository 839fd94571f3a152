"""Submission benchmark: the same 500-task plan sent by the bot and by taskgraph, same server.

Run: .venv/bin/python bench/submit_bench.py [--tasks 500] [--repeat 3] [--json PATH]

Both submit to one local Taskcluster (``python -m bot localtc``, a separate process, so
neither side shares its event loop): the bot with ``bot.tc.submit`` over
``taskcluster.aio``; taskgraph with its own ``create.create_tasks`` (threads, its default
concurrency of 50). The bot uses the same concurrency. Each run uses a fresh decision
task and task group; only the submission is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import slugid
import taskcluster.aio as tc_aio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.graph import Materializer, TaskGraphIndex, plan
from bot.localtc.process import local_taskcluster
from bot.localtc.synthetic import generate, labels_planning
from bot.tc.submit import SubmitPolicy, submit

CONCURRENCY = 50


def decision_definition(task_id: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {
        "created": now.isoformat(timespec="milliseconds") + "Z",
        "deadline": (now + dt.timedelta(hours=2)).isoformat(timespec="milliseconds") + "Z",
        "provisionerId": "gecko-3",
        "workerType": "decision",
        "schedulerId": "gecko-level-3",
        "taskGroupId": task_id,
        "payload": {},
        "metadata": {
            "name": "decision",
            "description": "bench",
            "owner": "a@b.c",
            "source": "https://x.y",
        },
    }


async def ours(
    options: dict[str, Any], index: TaskGraphIndex, labels: list[str], root_url: str
) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        queue = tc_aio.Queue(options, session=session)
        decision = slugid.nice()
        await queue.createTask(decision, decision_definition(decision))
        result = plan(index, labels, {}, request_id=decision)
        tasks = Materializer(
            index, decision_task_id=decision, scheduler_id="gecko-level-3", root_url=root_url
        ).definitions(result, dt.datetime.now(dt.UTC))
        start = time.perf_counter()
        results = await submit(queue, tasks, SubmitPolicy(concurrency=CONCURRENCY))
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
        return elapsed


def theirs(options: dict[str, Any], graph: dict[str, Any], labels: list[str]) -> float:
    import taskcluster
    from taskgraph import create
    from taskgraph.optimize import strategies  # noqa: F401 - registers the strategies
    from taskgraph.optimize.base import optimize_task_graph, registry
    from taskgraph.taskgraph import TaskGraph

    decision = slugid.nice()
    taskcluster.Queue(options).createTask(decision, decision_definition(decision))
    _, full = TaskGraph.from_json(json.loads(json.dumps(graph)))
    closure = full.graph.transitive_closure(set(labels))
    target = TaskGraph({label: full.tasks[label] for label in closure.nodes}, closure)
    optimized, label_to_taskid = optimize_task_graph(
        target,
        set(labels),
        {},
        set(labels),
        decision,
        existing_tasks={},
        strategy_override=dict.fromkeys(registry, registry["never"]),
    )
    start = time.perf_counter()
    create.create_tasks(
        {"trust-domain": "gecko"}, optimized, label_to_taskid, {"level": "3"}, decision
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    with local_taskcluster() as server:
        options = server.options()
        os.environ.update(server.environment())
        push = generate(3000, seed=11, already_run=0.0)
        index = TaskGraphIndex(msgspec.json.encode(push.graph))
        labels = labels_planning(index, args.tasks)
        bot_times = [
            asyncio.run(ours(options, index, labels, server.root_url)) for _ in range(args.repeat)
        ]
        taskgraph_times = [theirs(options, push.graph, labels) for _ in range(args.repeat)]
    best_bot, best_taskgraph = min(bot_times), min(taskgraph_times)
    print(f"plan: {args.tasks} new tasks, concurrency {CONCURRENCY}, best of {args.repeat}")
    rows = [
        ("bot (bot.tc.submit, taskcluster.aio)", best_bot),
        ("taskgraph (create.create_tasks, threads)", best_taskgraph),
    ]
    for name, seconds in rows:
        print(f"{name:44} {seconds:8.3f} s  {args.tasks / seconds:8.0f} tasks/s")
    print(f"ratio: the bot submits {best_taskgraph / best_bot:.2f}x faster (goal >= 2)")
    write_json(
        args.json,
        "submit_bench",
        args,
        [
            Measure(
                f"submit {args.tasks} tasks, concurrency {CONCURRENCY}",
                best_bot,
                "s",
                "taskgraph create.create_tasks",
                best_taskgraph,
                best_taskgraph / best_bot,
                "x faster",
                ">= 2",
            ),
            Measure("submission rate (bot)", args.tasks / best_bot, "tasks/s"),
        ],
    )


if __name__ == "__main__":
    main()
