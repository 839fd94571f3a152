"""Turn a plan into the exact task definitions to submit, as taskgraph's create_tasks would."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.graph.errors import GraphError
from bot.graph.index import TaskGraphIndex
from bot.graph.plan import Plan
from bot.tctime import format_time, parse_time

TASK_REFERENCE = re.compile(r"<([^>]+)>")
ARTIFACT_REFERENCE = re.compile(r"<([^/]+)/([^>]+)>")
DATESTAMP = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
UNITS: dict[str, dt.timedelta] = {
    **dict.fromkeys(("s", "second", "seconds"), dt.timedelta(seconds=1)),
    **dict.fromkeys(("min", "minute", "minutes"), dt.timedelta(minutes=1)),
    **dict.fromkeys(("h", "hour", "hours"), dt.timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), dt.timedelta(days=1)),
    **dict.fromkeys(("w", "week", "weeks"), dt.timedelta(weeks=1)),
    **dict.fromkeys(("mo", "month", "months"), dt.timedelta(days=30)),
    **dict.fromkeys(("y", "year", "years"), dt.timedelta(days=365)),
}
DEFAULT_PROXY_URL = "http://taskcluster"


@dataclass(frozen=True, slots=True)
class NewTask:
    """One task to create: which job, which copy, and its finished definition."""

    label: str
    task_id: str
    copy: int
    definition: dict[str, Any]


def task_label(definition: dict[str, Any]) -> str:
    """The job label of a task definition: ``tags.label`` (taskgraph sets it), else its name."""
    tags = definition.get("tags") or {}
    metadata = definition.get("metadata") or {}
    return str(tags.get("label") or metadata.get("name", ""))


def relative(text: str, now: dt.datetime, label: str) -> str:
    """``{"relative-datestamp": "2 days"}`` as an absolute time from ``now``."""
    match = DATESTAMP.match(text)
    if not match or match[2] not in UNITS:
        raise GraphError(f"task `{label}` has a relative-datestamp `{text}` that is not N UNIT")
    return format_time(now + int(match[1]) * UNITS[match[2]])


def _substitute(value: Any, replacers: dict[str, Callable[[str], str]]) -> Any:
    """Replace every single-key ``{"task-reference": ...}``-style object, recursively."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            replace = replacers.get(key)
            if replace is not None:
                if isinstance(inner, dict):  # the dict-key form: {"task-reference": {"<a>": x}}
                    return {replace(k): _substitute(v, replacers) for k, v in inner.items()}
                return replace(inner)
        return {k: _substitute(v, replacers) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, replacers) for v in value]
    return value


class Materializer:
    """Fills in task definitions for the plans of one push."""

    def __init__(
        self,
        index: TaskGraphIndex,
        *,
        decision_task_id: str,
        scheduler_id: str,
        root_url: str,
        task_group_id: str | None = None,
        parent_task_id: str | None = None,
        proxy_url: str = DEFAULT_PROXY_URL,
        max_deadline: dt.timedelta | None = None,
    ) -> None:
        """``max_deadline``: the deployment's longest deadline, when a project states it (the
        Queue's own default is 5 days; Firefox CI allows more); None keeps each task's
        deadline as the graph resolves it, as taskgraph does."""
        self.index = index
        self.decision_task_id = decision_task_id
        self.task_group_id = task_group_id or decision_task_id
        self.parent_task_id = parent_task_id or decision_task_id
        self.scheduler_id = scheduler_id
        self.root_url = root_url.rstrip("/")
        self.proxy_url = proxy_url.rstrip("/")
        self.max_deadline = max_deadline

    def artifact_url(self, task_id: str, path: str) -> str:
        base = self.root_url if path.startswith("public/") else self.proxy_url
        return f"{base}/api/queue/v1/task/{task_id}/artifacts/{path}"

    def references(
        self, label: str, task_id: str, dependencies: dict[str, str]
    ) -> dict[str, Callable[[str], str]]:
        def task_reference(text: str) -> str:
            def replace(match: re.Match[str]) -> str:
                key = match[1]
                if key == "self":
                    return task_id
                if key == "decision":
                    return self.decision_task_id
                if key in dependencies:
                    return dependencies[key]
                if key == "<":
                    return key
                raise GraphError(f"task `{label}` refers to `<{key}>`, which it does not depend on")

            return TASK_REFERENCE.sub(replace, text)

        def artifact_reference(text: str) -> str:
            def replace(match: re.Match[str]) -> str:
                key, path = match[1], match[2]
                if key == "self":
                    raise GraphError(f"task `{label}` refers to an artifact of itself")
                if key == "decision":
                    return self.artifact_url(self.decision_task_id, path)
                if key not in dependencies:
                    raise GraphError(
                        f"task `{label}` refers to `<{key}/…>`, which it does not depend on"
                    )
                return self.artifact_url(dependencies[key], path)

            return ARTIFACT_REFERENCE.sub(replace, text)

        return {"task-reference": task_reference, "artifact-reference": artifact_reference}

    def definitions(self, plan: Plan, now: dt.datetime) -> list[NewTask]:
        """Every new task of ``plan``, dependencies first, with one ``now`` for all."""
        ids = {**plan.reuse, **plan.create}
        new_ids = set(plan.create.values()) | {
            task_id for copies in (plan.copies or {}).values() for task_id in copies
        }
        return [
            NewTask(label, task_id, copy, self.definition(label, task_id, ids, new_ids, now))
            for label, task_id, copy in plan.new_tasks()
        ]

    def definition(
        self,
        label: str,
        task_id: str,
        ids: dict[str, str],
        new_ids: set[str],
        now: dt.datetime,
    ) -> dict[str, Any]:
        entry = self.index.entry(label)
        dependencies = {edge: ids[dependency] for edge, dependency in entry.dependencies.items()}
        for soft in entry.soft_dependencies:
            if soft in ids and ids[soft] in new_ids:
                dependencies[soft] = ids[soft]
        body: dict[str, Any] = _substitute(
            self.index.body(label), self.references(label, task_id, dependencies)
        )
        stamp: dict[str, Callable[[str], str]] = {
            "relative-datestamp": lambda text: relative(text, now, label)
        }
        body = _substitute(body, stamp)
        listed = [*body.get("dependencies", []), *sorted(dependencies.values())]
        if not any(d in new_ids for d in listed):
            listed.append(self.decision_task_id)
        body["dependencies"] = list(dict.fromkeys(listed))
        body["taskGroupId"] = self.task_group_id
        body["schedulerId"] = self.scheduler_id
        body.setdefault("extra", {})["parent"] = self.parent_task_id
        _fit_deadline(body, now, self.max_deadline)
        return body


def _fit_deadline(body: dict[str, Any], now: dt.datetime, longest: dt.timedelta | None) -> None:
    """Keep ``deadline`` within the deployment's limit, when one is stated (a missing one
    is a day, as taskgraph's default), and ``expires`` at or after it."""
    created = parse_time(body["created"]) if isinstance(body.get("created"), str) else now
    if not isinstance(body.get("created"), str):
        body["created"] = format_time(now)
    deadline = (
        parse_time(body["deadline"])
        if isinstance(body.get("deadline"), str)
        else created + dt.timedelta(days=1)
    )
    if longest is not None and deadline > created + longest:
        deadline = created + longest
    body["deadline"] = format_time(deadline)
    expires = body.get("expires")
    if isinstance(expires, str) and parse_time(expires) < deadline:
        body["expires"] = body["deadline"]
