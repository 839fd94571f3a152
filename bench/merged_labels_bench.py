"""Push-reading benchmark: a push's graph and merged labels, read by the bot and by taskgraph.

Run: .venv/bin/python bench/merged_labels_bench.py [--tasks 3000] [--actions 30] [--repeat 3]
     [--json PATH]

One local Taskcluster (served on loopback in this process) holds a seeded push, ``--actions``
add-new-jobs action tasks run on it (each indexed under the push's two action namespaces, as
real ones are) and two cron tasks. Timed: reading the push's full task graph and its merged
label-to-taskid from scratch, by the bot (``DecisionReader.graph`` and ``merged_labels``,
nothing cached) and by taskgraph's ``fetch_graph_and_labels`` (its thread pool, in a thread
so the server keeps serving); the two merged maps must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import jsone
import taskcluster.aio as tc_aio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.graph import GraphCache
from bot.localtc.callbacks import run_action
from bot.localtc.seed import SeededPush, register_action_hooks, seed_push
from bot.localtc.server import LocalTaskcluster, serve
from bot.tc.decision import DecisionReader


def run_actions(tc: LocalTaskcluster, push: SeededPush, count: int) -> None:
    """``count`` add-new-jobs action tasks, each adding two jobs, run to completion."""
    register_action_hooks(tc, push)
    actions = json.loads(
        tc.queue.artifact(push.decision_task_id, None, "public/actions.json").content
    )
    action = next(a for a in actions["actions"] if a["name"] == "add-new-jobs")
    new = [
        x for x in push.push.graph if x.startswith("test-") and x not in push.push.label_to_taskid
    ]
    for n in range(count):
        labels = new[2 * n : 2 * n + 2]
        context = {
            "taskGroupId": push.decision_task_id,
            "taskId": None,
            "input": {"tasks": labels, "times": 1},
        }
        payload = jsone.render(action["hookPayload"], context)
        key = (action["hookGroupId"], action["hookId"])
        task_id = tc.hooks.trigger(*key, payload, "bench")["taskId"]
        assert run_action(tc, task_id) == "completed"


def by_taskgraph(tc: LocalTaskcluster, push: SeededPush) -> dict[str, str]:
    from taskgraph.actions.util import fetch_graph_and_labels
    from taskgraph.util import taskcluster as tg

    os.environ["TASKCLUSTER_ROOT_URL"] = tc.root_url
    os.environ["TASKCLUSTER_CLIENT_ID"] = tc.credentials()["clientId"]
    os.environ["TASKCLUSTER_ACCESS_TOKEN"] = tc.credentials()["accessToken"]
    for cached in (tg.get_root_url, tg.get_taskcluster_client):
        cached.cache_clear()
    parameters = {
        "project": push.project,
        "pushlog_id": "1",
        "head_rev": push.revision,
        "repository_type": "hg",
    }
    _, _, merged = fetch_graph_and_labels(
        parameters, {"trust-domain": push.trust_domain}, task_group_id=push.decision_task_id
    )
    return dict(merged)


async def by_the_bot(
    tc: LocalTaskcluster, push: SeededPush, session: aiohttp.ClientSession
) -> dict[str, str]:
    options: dict[str, Any] = {"rootUrl": tc.root_url, "credentials": tc.credentials()}
    reader = DecisionReader(
        tc_aio.Index(options, session=session),
        tc_aio.Queue(options, session=session),
        session,
        GraphCache(2048),
    )
    await reader.graph(push.decision_task_id)
    return await reader.merged_labels(push.decision_task_id, push.project)


async def main(args: argparse.Namespace) -> list[Measure]:
    tc = LocalTaskcluster()
    runner = await serve(tc)
    try:
        push = seed_push(tc, tasks=args.tasks, seed=1)
        run_actions(tc, push, args.actions)
        bot_times, taskgraph_times = [], []
        async with aiohttp.ClientSession() as session:
            for _ in range(args.repeat):
                start = time.perf_counter()
                ours = await by_the_bot(tc, push, session)
                bot_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                theirs = await asyncio.to_thread(by_taskgraph, tc, push)
                taskgraph_times.append(time.perf_counter() - start)
                assert ours == theirs, "the merged maps differ"
    finally:
        await runner.cleanup()
    ours_s, theirs_s = statistics.median(bot_times), statistics.median(taskgraph_times)
    print(
        f"push of {args.tasks} tasks, {args.actions} action tasks: graph + merged labels\n"
        f"  bot       {ours_s * 1000:8.1f} ms (median of {args.repeat})\n"
        f"  taskgraph {theirs_s * 1000:8.1f} ms\n"
        f"  ratio     {theirs_s / ours_s:8.2f}x faster (taskgraph's time / the bot's)"
    )
    return [
        Measure(
            "graph + merged labels",
            ours_s * 1000,
            "ms",
            reference="taskgraph fetch_graph_and_labels",
            reference_value=theirs_s * 1000,
            ratio=theirs_s / ours_s,
            ratio_meaning="x faster",
        )
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--actions", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_option(parser)
    arguments = parser.parse_args()
    results = asyncio.run(main(arguments))
    write_json(arguments.json, "merged_labels_bench", arguments, results)
