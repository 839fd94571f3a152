"""Pre-flight scope check benchmark: the scopes a 500-task plan needs, against a client's.

Run: .venv/bin/python bench/scope_check_bench.py [--tasks 500] [--repeat 5] [--json PATH]

The bot's check (``create_task_needs`` for every task, then ``lacking`` against the client's
scopes: what it does before creating anything, after one Auth call kept a minute) is timed
against the reference measured in the same run: the Queue's own createTask scope expression
(the local Taskcluster's, as the real one instantiates and evaluates it) for every task.
Both must agree that the scopes cover the plan.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.graph import Materializer, TaskGraphIndex, plan
from bot.localtc import scopes as queue_rules
from bot.localtc import validation
from bot.localtc.queue import Queue
from bot.localtc.server import ENDPOINTS
from bot.localtc.synthetic import generate, labels_planning
from bot.tc.scopes import create_task_needs, lacking

CREATE_TASK = next(e for e in ENDPOINTS if e.service == "queue" and e.name == "createTask")
# A Gecko level-3 role's shape: wildcards and a few exact scopes.
CLIENT = [
    "queue:create-task:highest:gecko-t/*",
    "queue:create-task:highest:gecko-3/*",
    "queue:create-task:project:none",
    "queue:scheduler-id:gecko-level-3",
    "queue:route:index.gecko.v2.*",
    "queue:route:tc-treeherder.v2.*",
    "queue:route:notify.*",
    "docker-worker:cache:gecko-level-3-*",
    "docker-worker:capability:*",
    "generic-worker:cache:gecko-level-3-*",
    "secrets:get:project/taskcluster/gecko/*",
    "project:releng:services/*",
]


def definitions(tasks: int) -> list[dict[str, Any]]:
    push = generate(max(tasks * 3, 2000), seed=3)
    index = TaskGraphIndex(msgspec.json.encode(push.graph))
    labels = labels_planning(index, tasks)
    result = plan(index, labels, {}, request_id="bench")
    made = Materializer(
        index, decision_task_id="D" * 22, scheduler_id="gecko-level-3", root_url="https://tc"
    ).definitions(result, dt.datetime.now(dt.UTC))
    return [t.definition for t in made]


def the_bots(tasks: list[dict[str, Any]], client: list[str]) -> bool:
    return not lacking((n for t in tasks for n in create_task_needs(t)), client)


def the_queues(tasks: list[dict[str, Any]], client: list[str]) -> bool:
    ok = True
    for definition in tasks:
        task = {**validation.DEFAULTS, **definition}
        task.setdefault("taskQueueId", f"{task['provisionerId']}/{task['workerType']}")
        expression = queue_rules.instantiate(CREATE_TASK.scopes, Queue.scope_parameters(task))
        ok = queue_rules.evaluate(expression, client) and ok
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    add_json_option(parser)
    args = parser.parse_args()
    tasks = definitions(args.tasks)
    # the client holds what the plan needs, beyond CLIENT's shape: every task's own scopes
    client = CLIENT + sorted({str(s) for t in tasks for s in t.get("scopes", [])})
    ours, theirs = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        covered = the_bots(tasks, client)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        agreed = the_queues(tasks, client)
        theirs.append(time.perf_counter() - start)
        assert covered == agreed, (covered, agreed)
    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(
        f"{len(tasks)} tasks, client of {len(client)} scopes (covered: {covered})\n"
        f"  bot pre-flight     {ours_ms:8.2f} ms (median of {args.repeat})\n"
        f"  Queue's expression {theirs_ms:8.2f} ms\n"
        f"  ratio              {theirs_ms / ours_ms:8.2f}x faster"
    )
    write_json(
        args.json,
        "scope_check_bench",
        args,
        [
            Measure(
                "pre-flight scope check",
                ours_ms,
                "ms",
                reference="the Queue's createTask expression, per task",
                reference_value=theirs_ms,
                ratio=theirs_ms / ours_ms,
                ratio_meaning="x faster",
            )
        ],
    )


if __name__ == "__main__":
    main()
