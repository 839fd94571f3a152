"""Task-graph engine benchmark on a generated 40,000-task Gecko-shaped push.

Run: .venv/bin/python bench/graph_bench.py [--tasks 40000] [--seed 1] [--repeat 5] [--json PATH]

Every reference is measured in the same run on the same bytes and the same request:
- load+index vs ``orjson.loads`` (goal: at most 1.5x its time);
- load+index vs taskgraph's own load of the artifact, ``json.loads`` + ``TaskGraph.from_json``
  (goal: 3x faster; from_json alone on already-parsed JSON is printed too);
- resolve+plan of a 10-selector command vs taskgraph's ``transitive_closure`` +
  ``optimize_task_graph(existing_tasks=...)`` on the labels it resolves to (goal: 10x faster);
- resident memory added by loading vs the file's size (goal: at most 1.5x), measured in
  a fresh process.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate_graph import write
from bench.results import Measure, add_json_option, write_json
from bot.graph import Resolver, TaskGraphIndex, load_label_to_taskid, plan
from grammar import Schedule, parse_command

MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
from bot.graph import TaskGraphIndex
before = rss()
index = TaskGraphIndex(open({path!r}, "rb").read())
print(rss() - before)
"""


def best(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def command_for(index: TaskGraphIndex) -> str:
    """Ten selectors of every form, all on one build platform of this generated graph."""
    tests = [i for i, label in enumerate(index.labels) if label.startswith("test-")]
    pick = tests[len(tests) // 3]
    build_platform = index.attribute(pick, "build_platform")
    build_type = index.attribute(pick, "build_type")
    test_platform = str(index.attribute(pick, "test_platform")).split("/")[0]
    mine = [
        i
        for i in tests
        if index.attribute(i, "build_platform") == build_platform
        and index.attribute(i, "build_type") == build_type
    ]
    grouped = [index.symbols[i] for i in mine if index.symbols[i] and "(" in str(index.symbols[i])]
    chunked = next(i for i in mine if int(index.attribute(i, "test_chunk") or 0) > 2)
    bare = next(
        str(index.symbols[i]) for i in mine if index.symbols[i] and "(" not in str(index.symbols[i])
    )
    return " ".join(
        [
            "schedule",
            index.labels[mine[0]],
            index.labels[mine[len(mine) // 2]],
            str(grouped[0]),
            str(grouped[len(grouped) // 2]),
            f"build-{build_platform}/{build_type}",
            f"test-{test_platform}/{build_type}-xpcshell-*",
            '"reftest !swr"',
            "{}-{}".format(
                *(index.attribute(chunked, a) for a in ("unittest_try_name", "test_chunk"))
            ),
            bare,
            index.labels[mine[-1]],
            f"for {build_platform}/{build_type}",
        ]
    )


def from_json_alone(data: bytes) -> float:
    """Seconds taskgraph's TaskGraph.from_json takes on already-parsed JSON."""
    from taskgraph.taskgraph import TaskGraph

    parsed = json.loads(data)
    return best(lambda: TaskGraph.from_json(parsed), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()

    from taskgraph.optimize import strategies  # noqa: F401 - registers the strategies
    from taskgraph.optimize.base import optimize_task_graph, registry
    from taskgraph.taskgraph import TaskGraph

    os.environ.setdefault("TASKCLUSTER_ROOT_URL", "https://tc.example.com")
    with tempfile.TemporaryDirectory() as folder:
        graph_path, l2t_path = write(Path(folder), args.tasks, args.seed)
        data = graph_path.read_bytes()
        existing = load_label_to_taskid(l2t_path.read_bytes())
        size = len(data)
        probe = MEMORY_PROBE.format(
            root=str(Path(__file__).resolve().parents[1]), path=str(graph_path)
        )
        added = int(
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, check=True
            ).stdout
        )

        ours_load = best(lambda: TaskGraphIndex(data), args.repeat)
        orjson_load = best(lambda: orjson.loads(data), args.repeat)
        # taskgraph's own path from an artifact: stdlib json, then TaskGraph.from_json.
        from_json_only = from_json_alone(data)
        from_json = best(lambda: TaskGraph.from_json(json.loads(data)), 1)
        gc.collect()

        index = TaskGraphIndex(data)
        text = command_for(index)
        command = parse_command(text)
        assert isinstance(command, Schedule)

        def ours_plan() -> object:
            labels = Resolver(index, command.filters).resolve(command.selectors).labels
            return plan(index, labels, existing, request_id="rbench")

        result = ours_plan()
        requested = set(result.requested)
        graph_dict = orjson.loads(data)
        _, full = TaskGraph.from_json(graph_dict)
        never = registry["never"]

        def taskgraph_plan() -> object:
            closure = full.graph.transitive_closure(requested)
            target = TaskGraph(
                {label: copy.copy(full.tasks[label]) for label in closure.nodes}, closure
            )
            return optimize_task_graph(
                target,
                requested,
                {},
                requested,
                "DECISION",
                existing_tasks=existing,
                strategy_override=dict.fromkeys(registry, never),
            )

        ours_planning = best(ours_plan, args.repeat * 3)
        theirs_planning = best(taskgraph_plan, args.repeat)

    rows = [
        ("load+index (ours)", ours_load, None),
        ("orjson.loads", orjson_load, ours_load / orjson_load),
        ("taskgraph json.loads+from_json", from_json, from_json / ours_load),
        ("  (from_json alone, on parsed JSON)", from_json_only, from_json_only / ours_load),
        ("resolve+plan, 10 selectors (ours)", ours_planning, None),
        ("taskgraph closure+optimize", theirs_planning, theirs_planning / ours_planning),
    ]
    print(
        f"graph: {args.tasks:,} tasks, {size / 1e6:.0f} MB; request: {len(requested)} jobs, "
        f"{len(result.create)} to create, {len(result.reuse)} to reuse"
    )
    print(f"command: {text}")
    print(f"{'measurement':36} {'seconds':>9}  ratio")
    for name, seconds, ratio in rows:
        print(f"{name:36} {seconds:9.4f}  {'' if ratio is None else f'{ratio:.2f}'}")
    goals = [
        ("load+index / orjson.loads", ours_load / orjson_load, "x the time", "<= 1.5"),
        ("taskgraph's load / load+index", from_json / ours_load, "x faster", ">= 3"),
        ("closure+optimize / resolve+plan", theirs_planning / ours_planning, "x faster", ">= 10"),
        ("memory added by loading / file size", added / size, "x", "<= 1.5"),
    ]
    for name, value, unit, goal in goals:
        print(f"{name:38} {value:6.2f}{unit:11} (goal {goal})")
    print(f"(memory added by loading: {added / 1e6:.0f} MB for a {size / 1e6:.0f} MB file)")
    write_json(
        args.json,
        "graph_bench",
        args,
        [
            Measure(
                "load+index",
                ours_load,
                "s",
                "orjson.loads",
                orjson_load,
                ours_load / orjson_load,
                "x the time",
                "<= 1.5",
            ),
            Measure(
                "load+index",
                ours_load,
                "s",
                "taskgraph json.loads+from_json",
                from_json,
                from_json / ours_load,
                "x faster",
                ">= 3",
            ),
            Measure(
                "load+index",
                ours_load,
                "s",
                "taskgraph from_json alone, on parsed JSON",
                from_json_only,
                from_json_only / ours_load,
                "x faster",
            ),
            Measure(
                f"resolve+plan, 10 selectors ({len(requested)} jobs)",
                ours_planning,
                "s",
                "taskgraph closure+optimize",
                theirs_planning,
                theirs_planning / ours_planning,
                "x faster",
                ">= 10",
            ),
            Measure(
                "memory added by loading",
                added / 1e6,
                "MB",
                "file size",
                size / 1e6,
                added / size,
                "x",
                "<= 1.5",
            ),
        ],
    )


if __name__ == "__main__":
    main()
