"""The scopes a Taskcluster call needs, as the services check them, and what a set of scopes
lacks of them, grouped so that a reply stays a few lines however many tasks need them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Highest first: a scope to create at a priority also lets one create at any lower one.
PRIORITIES = ("highest", "very-high", "high", "medium", "low", "very-low", "lowest")
SHOWN_PER_GROUP = 3


def satisfies(have: Iterable[str], need: str) -> bool:
    """Whether a scope set satisfies one scope (``*`` at the end of a scope is a wildcard)."""
    return any(s == need or (s.endswith("*") and need.startswith(s[:-1])) for s in have)


@dataclass(frozen=True, slots=True)
class Need:
    """One scope a call needs, or one of several (``any_of[0]`` the one to ask for)."""

    any_of: tuple[str, ...]

    def met_by(self, have: Sequence[str]) -> bool:
        return any(satisfies(have, scope) for scope in self.any_of)

    def describe(self) -> str:
        if len(self.any_of) == 1:
            return f"`{self.any_of[0]}`"
        return f"`{self.any_of[0]}` (or a higher priority's)"


def create_task_needs(definition: Mapping[str, Any]) -> list[Need]:
    """What the Queue's createTask asks of its caller for ``definition``: every scope the
    task carries, ``queue:route:`` per route, its project and scheduler, and the task
    queue at its priority or a higher one (the schema's defaults applied)."""
    queue = definition.get("taskQueueId") or (
        f"{definition.get('provisionerId')}/{definition.get('workerType')}"
    )
    priority = str(definition.get("priority") or "lowest")
    higher = PRIORITIES[: PRIORITIES.index(priority) + 1] if priority in PRIORITIES else (priority,)
    return [
        *(Need((str(s),)) for s in definition.get("scopes") or ()),
        *(Need((f"queue:route:{r}",)) for r in definition.get("routes") or ()),
        Need((f"queue:create-task:project:{definition.get('projectId') or 'none'}",)),
        Need((f"queue:scheduler-id:{definition.get('schedulerId') or '-'}",)),
        Need(tuple(f"queue:create-task:{p}:{queue}" for p in reversed(higher))),
    ]


def trigger_hook_needs(hook_group_id: str, hook_id: str) -> list[Need]:
    return [Need((f"hooks:trigger-hook:{hook_group_id}/{hook_id}",))]


def lacking(needs: Iterable[Need], have: Sequence[str]) -> list[Need]:
    """The needs ``have`` does not meet, each once, in first-seen order."""
    return [n for n in dict.fromkeys(needs) if not n.met_by(have)]


def describe(missing: Sequence[Need]) -> str:
    """Missing scopes grouped by their first two parts (``queue:route``,
    ``docker-worker:cache``), a few shown per group and the rest counted: lines, not 970."""
    groups: dict[str, list[Need]] = defaultdict(list)
    for need in missing:
        groups[":".join(need.any_of[0].split(":")[:2])].append(need)
    lines = []
    for group, needs in groups.items():
        shown = ", ".join(n.describe() for n in needs[:SHOWN_PER_GROUP])
        more = len(needs) - SHOWN_PER_GROUP
        lines.append(f"  {group}: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines)
