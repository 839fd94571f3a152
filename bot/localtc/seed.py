"""Seed the local Taskcluster with a realistic push: a decision task and what it already ran.

The decision task is indexed where Gecko's are (``<trust-domain>.v2.<project>.revision.<rev>
.taskgraph.decision`` and ``...latest.taskgraph.decision``) and carries the artifacts the
bot reads: ``public/full-task-graph.json``, ``public/label-to-taskid.json``,
``public/actions.json`` and ``public/parameters.yml``. Every task of label-to-taskid exists
in the Queue and has run; a few deterministic ones failed, for ``retrigger failed``.

A pull request's push (``pull_request=("owner/repo", number)``) is seeded as Taskcluster's
GitHub integration runs a taskgraph project's decision task for it: no Index route (it is
found through the GitHub service's builds), its task group named after it, the head
revision in its ``<PROJECT>_HEAD_REV`` environment and ``tasks_for: github-pull-request``
in its parameters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from bot.graph import Materializer, Plan, TaskGraphIndex, task_id_for
from bot.graph.plan import _postorder
from bot.localtc.github import sanitized
from bot.localtc.hooks import action_hook
from bot.localtc.queue import Artifact
from bot.localtc.server import LocalTaskcluster
from bot.localtc.synthetic import SyntheticPush, at_push, generate
from bot.tctime import format_time

GRAPH_ARTIFACTS = ("public/full-task-graph.json", "public/label-to-taskid.json")
ACTION_HOOK_GROUP = "project-{trust_domain}"
ACTION_HOOK_ID = "in-tree-action-{level}-generic/{digest}"
# GitHub's owner and repository names, and the pull-request events that run a decision task.
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPOSITORY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
PULL_REQUEST = re.compile(r"^(?P<repository>[^/#\s]+/[^/#\s]+)#(?P<number>[0-9]+)$")
PULL_REQUEST_ACTIONS = ("opened", "synchronize", "reopened")


def pull_request_from(text: str) -> tuple[str, int]:
    """``("owner/repo", number)`` from ``OWNER/REPO#N``; ValueError says what is wrong."""
    found = PULL_REQUEST.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not OWNER/REPO#NUMBER (e.g. mozilla/translations#12)")
    pull_request = (found["repository"], int(found["number"]))
    _check_pull_request(pull_request)
    return pull_request


def _check_pull_request(pull_request: tuple[str, int]) -> None:
    repository, number = pull_request
    owner, _, name = repository.partition("/")
    if not OWNER.match(owner) or owner.endswith("-") or "--" in owner:
        raise ValueError(f"{owner!r} is not a GitHub owner name")
    if not REPOSITORY.match(name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a GitHub repository name")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"{number!r} is not a pull request number (1 or more)")


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
    pull_request: tuple[str, int] | None = None  # ("owner/repo", number) of a PR's push
    pushlog_id: str = "0"  # its place among the project's pushes (0: a pull request's)
    # A push to a git branch (no pushlog): the branch's head before it (GitHub's `before`)
    base_revision: str | None = None

    @property
    def scheduler_id(self) -> str:
        return f"{self.trust_domain}-level-{self.level}"

    @property
    def repository_url(self) -> str:
        if self.pull_request is not None:
            return f"https://github.com/{self.pull_request[0]}"
        if self.base_revision is not None:
            return f"https://github.com/example/{self.project}"
        return f"https://hg.example.com/{self.project}"

    def index_paths(self) -> list[str]:
        """Where the Index has the decision task: nowhere for a pull request's push."""
        if self.pull_request is not None:
            return []
        base = f"{self.trust_domain}.v2.{self.project}"
        paths = [
            f"{base}.revision.{self.revision}.taskgraph.decision",
            f"{base}.latest.taskgraph.decision",
        ]
        # a push to a git branch has no pushlog (taskgraph's GitHub push routes, as above)
        return (
            paths
            if self.base_revision is not None
            else [*paths, f"{base}.pushlog-id.{self.pushlog_id}.decision"]
        )


def actions_json(
    *,
    decision_task_id: str,
    project: str,
    revision: str,
    level: int,
    trust_domain: str,
    pushlog_id: str,
    repository_url: str | None = None,
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
                        "url": repository_url or f"https://hg.example.com/{project}",
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
            action(
                "confirm-failures",
                "Confirm failures in job",
                "cf",
                "Re-run Tests for original manifest, directories or tests for failing tests.",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"times": {**times, "description": "How many times."}},
                },
                [{"kind": "test"}],
            ),
            action(
                "backfill",
                "Backfill",
                "Bk",
                "Take the label of the current task, and trigger the task with that label on "
                "previous pushes in the same project.",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "depth": {**times, "default": 9, "maximum": 25, "title": "Depth"},
                        "inclusive": {"default": False, "type": "boolean"},
                        "testPath": {"type": "string"},
                        "times": {**times, "maximum": 10},
                    },
                },
                [{}],
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
    level: int | None = None,
    fail_every: int = 37,
    pull_request: tuple[str, int] | None = None,
    pull_request_action: str = "opened",
    push: SyntheticPush | None = None,
    outcome: Callable[[str], str] | None = None,
    after: str | None = None,
) -> SeededPush:
    """Create the push in ``tc`` (in memory, no HTTP) and return where to find it.

    ``level`` is 3 by default, 1 for a pull request (whose ``project`` is its repository's
    name). A pull request's push gets a build in ``tc.github`` (event
    ``pull_request.<pull_request_action>``): pending while its task group is unresolved,
    then success, or failure when a task did not complete.

    ``push`` is the graph and the tasks it ran (by default generated from ``seed``);
    ``outcome`` says how each task it ran ended (by default one test in ``fail_every``
    failed).

    ``after``: a push to a git branch (a GitHub push: no pushlog id) whose head was
    ``after`` before it (forty zeros: the branch's first push), as its ``base_rev`` says.
    """
    if pull_request is not None:
        _check_pull_request(pull_request)
        if pull_request_action not in PULL_REQUEST_ACTIONS:
            raise ValueError(f"pull_request_action must be one of {PULL_REQUEST_ACTIONS}")
        project = pull_request[0].partition("/")[2]
        level = 1 if level is None else level
        revision = _sha(f"github-pull-request/{pull_request[0]}#{pull_request[1]}/{seed}")
    else:
        level = 3 if level is None else level
        revision = hashlib.sha1(f"{project}/{seed}".encode()).hexdigest()
    push = push or generate(tasks, seed=seed)
    decision = task_id_for(f"decision/{project}/{revision}", "decision")
    now = tc.queue.now()
    pushlog_id = "0" if pull_request or after is not None else str(seed)
    seeded = SeededPush(
        project,
        revision,
        trust_domain,
        level,
        decision,
        push,
        (),
        pull_request,
        pushlog_id,
        base_revision=after,
    )
    queue = tc.queue
    routes = [f"index.{path}" for path in seeded.index_paths()]
    definition: dict[str, Any] = {
        "created": format_time(now),
        "deadline": format_time(now + dt.timedelta(days=1)),
        "provisionerId": f"{trust_domain}-{level}",
        "workerType": "decision",
        "schedulerId": seeded.scheduler_id,
        "taskGroupId": decision,
        "routes": routes,
        # As a real decision task is granted: the in-tree action hooks of its level (the
        # grant the bot checks before it triggers one) and its repository's role.
        "scopes": [
            "in-tree:hook-action:"
            + ACTION_HOOK_GROUP.format(trust_domain=trust_domain)
            + f"/in-tree-action-{level}-*",
            f"assume:repo:hg.example.com/{project}:branch:default",
        ],
        "payload": {"command": ["taskgraph", "decision"]},
        "metadata": {
            "name": f"Gecko Decision Task ({project} {revision[:12]})",
            "description": "The decision task of a seeded push",
            "owner": "someone@example.com",
            "source": f"https://hg.example.com/{project}/rev/{revision}",
        },
        "extra": {"treeherder": {"symbol": "D", "machine": {"platform": "gecko-decision"}}},
    }
    if pull_request is not None:
        definition.update(_pull_request_decision(seeded, pull_request))
    queue.create(decision, queue.check_definition(decision, definition))
    if pull_request is not None:  # the service records the build as it creates the task
        _record_build(tc, seeded, pull_request_action, seed)
    run = queue.claim(decision, "local", "decision-worker")

    # Every task names this push (GECKO_HEAD_REV, routes, links), and the document is
    # indented by two spaces, as taskgraph writes its artifacts.
    graph_bytes = msgspec.json.format(
        at_push(msgspec.json.encode(push.graph), revision, int(pushlog_id)), indent=2
    )
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
                    pushlog_id=pushlog_id,
                    repository_url=seeded.repository_url,
                )
            ),
            "application/json",
        ),
        "public/parameters.yml": (
            parameters_yml(**_parameters(seeded, seed)).encode(),
            "text/yaml",
        ),
    }
    for name, (content, content_type) in documents.items():
        # A decision task's worker uploads its JSON and YAML gzipped (served so).
        artifact = Artifact(name, content, content_type, expires, content_encoding="gzip")
        queue.put_artifact(decision, run, artifact)
    queue.resolve(decision, run, "completed")

    failed: list[str] = []
    for n, label in enumerate(order):
        task_id = push.label_to_taskid[label]
        record = queue.tasks[task_id]
        if record.state != "pending":
            continue  # a dependency failed: it stays unscheduled, as on a real push
        run = queue.claim(task_id, "local", "seed-worker")
        if outcome is not None:
            ended = outcome(label)
        else:
            ended = "failed" if label.startswith("test-") and n % fail_every == 0 else "completed"
        queue.resolve(task_id, run, ended)
        if ended == "failed":
            failed.append(label)
    return replace(seeded, failed=tuple(failed))


def _sha(text: str) -> str:
    """A deterministic 40-digit hexadecimal revision."""
    return hashlib.sha1(text.encode()).hexdigest()


def _env_prefix(repository_name: str) -> str:
    """taskgraph's ``.taskcluster.yml`` names its environment after the repository:
    ``firefox-translations`` → ``FIREFOX_TRANSLATIONS``."""
    return re.sub(r"[^A-Za-z0-9]", "_", repository_name).upper()


def _pull_request_decision(seeded: SeededPush, pull_request: tuple[str, int]) -> dict[str, Any]:
    """What a taskgraph project's GitHub decision task for a pull request has: no Index
    route (only ``checks``, Taskcluster's GitHub check-run reporting), the revisions and
    repositories in its environment, and ``tasks_for``."""
    repository, number = pull_request
    owner = repository.partition("/")[0]
    prefix = _env_prefix(seeded.project)
    url = seeded.repository_url
    return {
        "routes": ["checks"],
        "payload": {
            "command": ["taskgraph", "decision", "--tasks-for=github-pull-request"],
            "env": {
                f"{prefix}_BASE_REPOSITORY": url,
                f"{prefix}_BASE_REF": "main",
                f"{prefix}_BASE_REV": _sha(f"base/{seeded.revision}"),
                f"{prefix}_HEAD_REPOSITORY": url,
                f"{prefix}_HEAD_REF": f"pull-request-{number}",
                f"{prefix}_HEAD_REV": seeded.revision,
                f"{prefix}_REPOSITORY_TYPE": "git",
                f"{prefix}_PULL_REQUEST_NUMBER": str(number),
                "REPOSITORIES": json.dumps({prefix.lower(): seeded.project}),
            },
        },
        "metadata": {
            "name": f"Decision Task (pull request #{number})",
            "description": f"The decision task of pull request {repository}#{number}",
            "owner": f"{owner}@users.noreply.github.com",
            "source": f"{url}/raw/{seeded.revision}/.taskcluster.yml",
        },
        "extra": {
            "tasks_for": "github-pull-request",
            "treeherder": {"symbol": "D", "machine": {"platform": "gecko-decision"}},
        },
    }


def _parameters(seeded: SeededPush, seed: int) -> dict[str, Any]:
    """The push's parameters.yml values."""
    common = {
        "project": seeded.project,
        "head_rev": seeded.revision,
        "level": str(seeded.level),
        "trust_domain": seeded.trust_domain,
        "head_repository": seeded.repository_url,
    }
    if seeded.pull_request is None and seeded.base_revision is not None:
        return {
            **common,
            "tasks_for": "github-push",
            "repository_type": "git",
            "pushlog_id": "0",
            "base_repository": seeded.repository_url,
            "base_rev": seeded.base_revision,
            "head_ref": "refs/heads/main",
            "owner": "someone@example.com",
        }
    if seeded.pull_request is None:  # who pushed, and the tip's message (Gecko's `message`)
        return {
            **common,
            "pushlog_id": str(seed),
            "owner": f"dev{seed % 7}@example.com",
            "message": f"Bug {1_900_000 + seed} - change number {seed} r=reviewer",
        }
    number = seeded.pull_request[1]
    return {
        **common,
        "tasks_for": "github-pull-request",
        "repository_type": "git",
        "pushlog_id": "0",
        "pushdate": 0,
        "base_repository": seeded.repository_url,
        "base_ref": "main",
        "base_rev": _sha(f"base/{seeded.revision}"),
        "head_ref": f"pull-request-{number}",
        "owner": f"{seeded.pull_request[0].partition('/')[0]}@users.noreply.github.com",
    }


def _record_build(tc: LocalTaskcluster, seeded: SeededPush, action: str, seed: int) -> None:
    """The GitHub service's build of the pull request's push, pending as the decision task
    is created; ``tc.github`` then updates it when the task group resolves."""
    assert seeded.pull_request is not None
    repository, number = seeded.pull_request
    owner, _, name = repository.partition("/")
    digest = hashlib.sha256(f"{repository}#{number}/{seed}/{action}".encode()).digest()
    tc.github.add_build(
        organization=sanitized(owner),
        repository=sanitized(name),
        sha=seeded.revision,
        task_group_id=seeded.decision_task_id,
        state="pending",
        installation_id=int.from_bytes(digest[:3], "big") + 1,
        event_type=f"pull_request.{action}",
        event_id=str(uuid.UUID(bytes=digest[:16], version=4)),
        pull_request_number=number,
    )


def register_action_hooks(tc: LocalTaskcluster, push: SeededPush) -> None:
    """The hooks the seeded push's actions.json names, as a deployment would have them."""
    actions = json.loads(
        tc.queue.artifact(push.decision_task_id, None, "public/actions.json").content
    )
    for action in actions["actions"]:
        key = (action["hookGroupId"], action["hookId"])
        if key not in tc.hooks.hooks:
            tc.hooks.add(action_hook(*key, trust_domain=push.trust_domain))
