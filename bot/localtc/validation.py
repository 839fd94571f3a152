"""The Queue's createTask input rules (create-task-request.json), checked without a schema engine.

Every rule mirrors the real schema; the tests compare verdicts with the real schema in
../shared/reference on valid definitions and on many broken ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

SLUG = re.compile(r"^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$")
PROVISIONER = re.compile(r"^[a-zA-Z0-9-_]{1,38}$")
WORKER_TYPE = re.compile(r"^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$")
TASK_QUEUE = re.compile(r"^[a-zA-Z0-9-_]{1,38}/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$")
SCHEDULER = re.compile(r"^([a-zA-Z0-9-_]*)$")
PROJECT = re.compile(r"^([a-zA-Z0-9._/-]*)$")
SCOPE = re.compile(r"^[ -~]*$")
SOURCE = re.compile(r"^(https?://|ssh://|git@)")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
PRIORITIES = ("highest", "very-high", "high", "medium", "low", "very-low", "lowest")
REQUIRES = ("all-completed", "all-resolved")

DEFAULTS: dict[str, Any] = {
    "priority": "lowest",
    "requires": "all-completed",
    "retries": 5,
    "schedulerId": "-",
    "projectId": "none",
    "routes": [],
    "scopes": [],
    "dependencies": [],
    "extra": {},
    "tags": {},
    "payload": {},
}

Check = Callable[[Any], str | None]


def _string(
    pattern: re.Pattern[str] | None = None, *, low: int = 0, high: int | None = None
) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) < low or (high is not None and len(value) > high):
            return (
                f"must be {low} to {high} characters long"
                if high
                else f"must be at least {low} long"
            )
        if pattern is not None and not pattern.search(value):
            return f"must match {pattern.pattern}"
        return None

    return check


def _date(value: Any) -> str | None:
    if not isinstance(value, str) or not DATE_TIME.match(value):
        return "must be a date-time such as 2026-01-01T00:00:00.000Z"
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return "is not a real date and time"
    return None


def _array(item: Check, *, unique: bool, most: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return "must be an array"
        if most is not None and len(value) > most:
            return f"may hold at most {most} items"
        for n, element in enumerate(value):
            problem = item(element)
            if problem:
                return f"item {n} {problem}"
        if unique and len({repr(v) for v in value}) != len(value):
            return "must not repeat an item"
        return None

    return check


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object"


def _tags(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    for key, tag in value.items():
        if not isinstance(tag, str) or len(tag) > 4096:
            return f"tag `{key}` must be a string of at most 4096 characters"
    return None


def _enum(choices: tuple[str, ...]) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _retries(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 49:
        return "must be a whole number from 0 to 49"
    return None


def _metadata(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    for key in ("name", "description", "owner", "source"):
        if key not in value:
            return f"needs `{key}`"
    extra = set(value) - {"name", "description", "owner", "source"}
    if extra:
        return f"has unknown field `{sorted(extra)[0]}`"
    for key, check in (
        ("name", _string(high=255)),
        ("description", _string(high=32768)),
        ("owner", _string(high=255)),
        ("source", _string(SOURCE, high=4096)),
    ):
        problem = check(value[key])
        if problem:
            return f"`{key}` {problem}"
    return None


FIELDS: dict[str, Check] = {
    "provisionerId": _string(PROVISIONER),
    "workerType": _string(WORKER_TYPE),
    "taskQueueId": _string(TASK_QUEUE),
    "schedulerId": _string(SCHEDULER, low=1, high=38),
    "projectId": _string(PROJECT, low=1, high=500),
    "taskGroupId": _string(SLUG),
    "dependencies": _array(_string(SLUG), unique=True, most=10000),
    "requires": _enum(REQUIRES),
    "routes": _array(_string(low=1, high=249), unique=True, most=64),
    "priority": _enum(PRIORITIES),
    "retries": _retries,
    "created": _date,
    "deadline": _date,
    "expires": _date,
    "scopes": _array(_string(SCOPE), unique=False),
    "payload": _object,
    "metadata": _metadata,
    "tags": _tags,
    "extra": _object,
}
REQUIRED = ("created", "deadline", "payload", "metadata")


def problems(definition: Any) -> list[str]:
    """Every way ``definition`` breaks the createTask input rules (empty when none)."""
    if not isinstance(definition, dict):
        return ["the task definition must be a JSON object"]
    found = [f"`{key}` is required" for key in REQUIRED if key not in definition]
    found += [f"`{key}` is not a task field" for key in definition if key not in FIELDS]
    for key, check in FIELDS.items():
        if key in definition:
            problem = check(definition[key])
            if problem:
                found.append(f"`{key}` {problem}")
    return found


def with_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition with the schema's declared defaults filled in, as the Queue stores it."""
    filled = {key: value for key, value in DEFAULTS.items() if key not in definition}
    return {
        **definition,
        **{k: (v.copy() if isinstance(v, list | dict) else v) for k, v in filled.items()},
    }
