"""Many pushes in little memory: 20 consecutive 40,000-task pushes of one project, all cached.

Run: .venv/bin/python bench/many_pushes_bench.py [--pushes 20] [--tasks 40000] [--json PATH]

The pushes are one generated Gecko-shaped graph moved to 20 revisions and pushlog ids
(``at_push``: every task names its push, as a decision task writes them). A fresh process
loads each as the bot does (``TaskGraphIndex``, kept in a ``GraphCache`` of the default
bound, bodies packed) and reports its resident memory before and after (``/proc``, not
estimates). Goals, measured in the same run:
- the cache's resident memory for all the pushes: at most 1.0 GB;
- resolve + plan + materialise of a 10-selector command on a cached push: at most 2x the
  time of the same on a freshly loaded graph whose bodies are views into the document
  (the bot's warm path before packing).
Printed too: what the cache counts (``GraphCache.used``) against the measured memory, and a
skeleton's measured bytes per task against the constant the cache counts with.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate_graph import write
from bench.graph_bench import command_for
from bench.results import Measure, add_json_option, write_json

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import datetime as dt, gc, json, resource, sys, time, hashlib
sys.path.insert(0, {root!r})
from bot.graph import GraphCache, Materializer, Resolver, TaskGraphIndex, load_label_to_taskid, plan
from bot.graph.cache import SKELETON_BYTES_PER_TASK
from bot.localtc.synthetic import at_push
from grammar import parse_command

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

base = open({graph!r}, "rb").read()
existing = load_label_to_taskid(open({l2t!r}, "rb").read())
command = parse_command({command!r})
now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

def work(index):
    labels = Resolver(index, command.filters).resolve(command.selectors).labels
    result = plan(index, labels, existing, request_id="rbench")
    materializer = Materializer(index, decision_task_id="D" * 22, scheduler_id="gecko-level-3",
                                root_url="https://tc.example.com")
    return len(list(materializer.definitions(result, now)))

def best(index, repeat):
    times = []
    for _ in range(repeat):
        index.bodies.forget()  # each run decompresses what it reads, as a new command would
        start = time.perf_counter()
        work(index)
        times.append(time.perf_counter() - start)
    return min(times)

# The reference: a graph as loaded, bodies still views into its document.
fresh = TaskGraphIndex(base)
reference = best(fresh, 5)
del fresh
gc.collect()

cache = GraphCache()
before = rss()
skeleton_per_task = None
for n in range({pushes}):
    revision = hashlib.sha1(f"push-{{n}}".encode()).hexdigest()
    data = at_push(base, revision, 1000 + n)
    index = TaskGraphIndex(data)
    del data
    index.pack()
    cache.put(revision, index)
    if n == 0:
        gc.collect()
        skeleton_per_task = (rss() - before - index.nbytes_held) / len(index)
    del index
gc.collect()
after = rss()
kept = [cache.get(hashlib.sha1(f"push-{{n}}".encode()).hexdigest()) for n in range({pushes})]
assert all(k is not None for k in kept), "a push was evicted"
cached = [best(k, 3) for k in kept]
print(json.dumps({{
    "rss": after - before, "used": cache.used, "kept": len(cache), "reference": reference,
    "worst": max(cached), "median": sorted(cached)[len(cached) // 2],
    "skeleton_per_task": skeleton_per_task, "counted_per_task": SKELETON_BYTES_PER_TASK,
    "document": len(base), "packed": kept[-1].nbytes_held, "tasks": len(kept[0]),
}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        graph_path, l2t_path = write(Path(folder), args.tasks, args.seed)
        from bot.graph import TaskGraphIndex

        command = command_for(TaskGraphIndex(graph_path.read_bytes()))
        gc.collect()
        probe = PROBE.format(
            root=str(ROOT),
            graph=str(graph_path),
            l2t=str(l2t_path),
            command=command,
            pushes=args.pushes,
        )
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
        seconds = time.perf_counter() - started
    result = json.loads(out.strip().splitlines()[-1])
    gigabyte = 1e9
    rss = result["rss"]
    ratio = result["worst"] / result["reference"]
    document = result["document"]
    print(
        f"{args.pushes} pushes of {result['tasks']:,} tasks, {document / 1e6:.0f} MB each "
        f"({args.pushes * document / 1e9:.1f} GB of graphs); {result['kept']} kept; "
        f"{seconds:.0f} s"
    )
    print(f"command: {command}")
    print(
        f"cache's resident memory: {rss / 1e6:,.0f} MB "
        f"({rss / (args.pushes * document):.3f}x the graphs' size; goal <= 1.0 GB)"
    )
    print(
        f"the cache counts {result['used'] / 1e6:,.0f} MB of them "
        f"(bound {1024:,} MiB); a packed push holds {result['packed'] / 1e6:.1f} MB of bodies"
    )
    print(
        f"skeleton: {result['skeleton_per_task']:,.0f} bytes a task measured, "
        f"{result['counted_per_task']:,} counted"
    )
    print(
        f"resolve+plan+materialise on a cached push: worst {result['worst'] * 1e3:.1f} ms, "
        f"median {result['median'] * 1e3:.1f} ms; on a fresh graph "
        f"{result['reference'] * 1e3:.1f} ms: {ratio:.2f}x (goal <= 2)"
    )
    write_json(
        args.json,
        "many_pushes_bench",
        args,
        [
            Measure(
                f"resident memory, {args.pushes} cached pushes",
                rss / gigabyte,
                "GB",
                "the graphs' size",
                args.pushes * document / gigabyte,
                rss / (args.pushes * document),
                "x",
            ),
            Measure("resident memory, cached pushes", rss / gigabyte, "GB", goal="<= 1.0"),
            Measure(
                "resolve+plan+materialise, cached push (worst)",
                result["worst"],
                "s",
                "the same on a freshly loaded graph",
                result["reference"],
                ratio,
                "x the time",
                "<= 2",
            ),
            Measure("GraphCache.used, cached pushes", result["used"] / gigabyte, "GB"),
            Measure("skeleton, measured", result["skeleton_per_task"], "bytes/task"),
        ],
    )


if __name__ == "__main__":
    main()
