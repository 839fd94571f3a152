"""Seed the local Taskcluster with a realistic push: a decision task and what it already ran.

The decision task is indexed where Gecko's are (``<trust-domain>.v2.<project>.revision.<rev>
.taskgraph.decision`` and ``...latest.taskgraph.decision``) and carries the artifacts the
bot reads: ``public/full-task-graph.json``, ``public/label-to-taskid.json``,
``public/actions.json`` and ``public/parameters.yml``. Every task of label-to-taskid exists
in the Queue and has run; a few deterministic ones failed, for ``retrigger failed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec

from bot.graph import Materializer, Plan, TaskGraphIndex, task_id_for
from bot.graph.plan import _postorder
from bot.localtc.queue import Artifact
from bot.localtc.server import LocalTaskcluster
from bot.localtc.synthetic import SyntheticPush, generate
from bot.tctime import format_time

GRAPH_ARTIFACTS = ("public/full-task-graph.json", "public/label-to-taskid.json")
ACTION_HOOK_GROUP = "project-{trust_domain}"
ACTION_HOOK_ID = "in-tree-action-{level}-generic/{digest}"


@dataclass(frozen=True, slots=True)
class SeededPush:
    """Where the seeded push is and what it holds."""

    project: str
    revision: str
    trust_domain: str
    level: int
    decision_task_id: str
    push: SyntheticPush
    failed: tuple[str, ...]

    @property
    def scheduler_id(self) -> str:
        return f"{self.trust_domain}-level-{self.level}"

    def index_paths(self) -> list[str]:
        base = f"{self.trust_domain}.v2.{self.project}"
        return [
            f"{base}.revision.{self.revision}.taskgraph.decision",
            f"{base}.latest.taskgraph.decision",
        ]


def actions_json(
    *,
    decision_task_id: str,
    project: str,
    revision: str,
    level: int,
    trust_domain: str,
    pushlog_id: str,
) -> dict[str, Any]:
    """An ``actions.json`` (version 1) of hook actions, shaped like Gecko decision tasks write."""
    digest = hashlib.sha256(f"{project}{revision}".encode()).hexdigest()[:10]

    def action(
        name: str,
        title: str,
        symbol: str,
        description: str,
        schema: dict[str, Any] | None,
        context: list[Any],
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": name,
            "title": title,
            "description": description,
            "kind": "hook",
            "context": context,
            "extra": {"actionPerm": "generic"},
            "hookGroupId": ACTION_HOOK_GROUP.format(trust_domain=trust_domain),
            "hookId": ACTION_HOOK_ID.format(level=level, digest=digest),
            "hookPayload": {
                "decision": {
                    "action": {
                        "cb_name": name,
                        "description": description,
                        "name": name,
                        "symbol": symbol,
                        "taskGroupId": decision_task_id,
                        "title": title,
                    },
                    "push": {
                        "owner": "someone@example.com",
                        "pushlog_id": pushlog_id,
                        "revision": revision,
                    },
                    "repository": {
                        "level": str(level),
                        "project": project,
                        "url": f"https://hg.example.com/{project}",
                    },
                },
                "user": {
                    "input": {"$eval": "input"},
                    "taskGroupId": {"$eval": "taskGroupId"},
                    "taskId": {"$eval": "taskId"},
                },
            },
        }
        if schema is not None:
            entry["schema"] = schema
        return entry

    labels = {
        "description": "An array of task labels",
        "items": {"type": "string"},
        "type": "array",
    }
    times = {"default": 1, "maximum": 100, "minimum": 1, "title": "Times", "type": "integer"}
    return {
        "version": 1,
        "variables": {},
        "actions": [
            action(
                "add-new-jobs",
                "Add new jobs",
                "add-new",
                "Add new jobs using task labels.",
                {"type": "object", "properties": {"tasks": labels, "times": times}},
                [],
            ),
            action(
                "retrigger-multiple",
                "Retrigger",
                "rt",
                "Create a clone of the task.",
                {
                    "type": "object",
                    "properties": {
                        "requests": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"tasks": labels, "times": times},
                            },
                        }
                    },
                },
                [],
            ),
            action("cancel", "Cancel Task", "cx", "Cancel the given task", None, [{}]),
            action(
                "cancel-all",
                "Cancel All",
                "cAll",
                "Cancel all running and pending tasks created by the decision task.",
                None,
                [],
            ),
        ],
    }


def parameters_yml(**values: Any) -> str:
    """A flat ``parameters.yml``; strings quoted, as the decision task writes them."""
    lines = []
    for key, value in sorted(values.items()):
        text = (
            f"'{value}'"
            if isinstance(value, str)
            else str(value).lower()
            if isinstance(value, bool)
            else value
        )
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


def seed_push(
    tc: LocalTaskcluster,
    *,
    tasks: int = 3000,
    seed: int = 1,
    project: str = "autoland",
    trust_domain: str = "gecko",
    level: int = 3,
    fail_every: int = 37,
) -> SeededPush:
    """Create the push in ``tc`` (in memory, no HTTP) and return where to find it."""
    push = generate(tasks, seed=seed)
    revision = hashlib.sha1(f"{project}/{seed}".encode()).hexdigest()
    decision = task_id_for(f"decision/{project}/{revision}", "decision")
    now = tc.queue.now()
    seeded = SeededPush(project, revision, trust_domain, level, decision, push, ())
    queue = tc.queue
    routes = [f"index.{path}" for path in seeded.index_paths()]
    definition = {
        "created": format_time(now),
        "deadline": format_time(now + dt.timedelta(days=1)),
        "provisionerId": f"{trust_domain}-{level}",
        "workerType": "decision",
        "schedulerId": seeded.scheduler_id,
        "taskGroupId": decision,
        "routes": routes,
        "payload": {"command": ["taskgraph", "decision"]},
        "metadata": {
            "name": f"Gecko Decision Task ({project} {revision[:12]})",
            "description": "The decision task of a seeded push",
            "owner": "someone@example.com",
            "source": f"https://hg.example.com/{project}/rev/{revision}",
        },
        "extra": {"treeherder": {"symbol": "D", "machine": {"platform": "gecko-decision"}}},
    }
    queue.create(decision, queue.check_definition(decision, definition))
    run = queue.claim(decision, "local", "decision-worker")

    graph_bytes = msgspec.json.encode(push.graph)
    index = TaskGraphIndex(graph_bytes)
    order = _postorder(index, list(push.label_to_taskid))
    ran = Plan(
        request_id="seed",
        requested=(),
        create={label: push.label_to_taskid[label] for label in order},
        reuse={},
        edges=(),
    )
    materializer = Materializer(
        index,
        decision_task_id=decision,
        scheduler_id=seeded.scheduler_id,
        root_url=tc.root_url or "http://127.0.0.1",
    )
    for new in materializer.definitions(ran, now):
        queue.create(new.task_id, queue.check_definition(new.task_id, new.definition))

    expires = format_time(now + dt.timedelta(days=28))
    documents = {
        "public/full-task-graph.json": (graph_bytes, "application/json"),
        "public/label-to-taskid.json": (
            msgspec.json.encode(push.label_to_taskid),
            "application/json",
        ),
        "public/actions.json": (
            msgspec.json.encode(
                actions_json(
                    decision_task_id=decision,
                    project=project,
                    revision=revision,
                    level=level,
                    trust_domain=trust_domain,
                    pushlog_id=str(seed),
                )
            ),
            "application/json",
        ),
        "public/parameters.yml": (
            parameters_yml(
                project=project,
                head_rev=revision,
                level=str(level),
                pushlog_id=str(seed),
                trust_domain=trust_domain,
                head_repository=f"https://hg.example.com/{project}",
            ).encode(),
            "text/yaml",
        ),
    }
    for name, (content, content_type) in documents.items():
        queue.put_artifact(decision, run, Artifact(name, content, content_type, expires))
    queue.resolve(decision, run, "completed")

    failed: list[str] = []
    for n, label in enumerate(order):
        task_id = push.label_to_taskid[label]
        record = queue.tasks[task_id]
        if record.state != "pending":
            continue  # a dependency failed: it stays unscheduled, as on a real push
        run = queue.claim(task_id, "local", "seed-worker")
        outcome = "failed" if label.startswith("test-") and n % fail_every == 0 else "completed"
        queue.resolve(task_id, run, outcome)
        if outcome == "failed":
            failed.append(label)
    return SeededPush(project, revision, trust_domain, level, decision, push, tuple(failed))
