"""Plan a request: the dependency closure of the requested jobs, reusing what already ran.

The rule is taskgraph's (``create_tasks`` for the add-new-jobs action, with index and VCS
optimizations off): requested jobs are always created fresh; any other job of the closure
is reused when the push already has a task for it (label-to-taskid) and every job it
depends on is reused too; everything else is created.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import slugid

from bot.graph.errors import GraphError
from bot.graph.index import TaskGraphIndex

MISSING_DEPENDENCY = (
    "`{label}` depends on `{dependency}` (as `{edge}`), which is not in the task graph."
)
UNKNOWN_LABEL = "`{label}` is not a job of this task graph."
CYCLE = "the task graph has a dependency cycle: {path}."


def task_id_for(request_id: str, label: str, copy: int = 0) -> str:
    """A taskId fixed by (request, label, copy), so re-submitting creates no duplicate.

    A version-4 UUID made from a SHA-256 digest, its first bit cleared like slugid's
    ``nice()`` so it never starts with ``-``; it matches the Queue's taskId pattern.
    """
    digest = bytearray(hashlib.sha256(f"{request_id}\0{label}\0{copy}".encode()).digest()[:16])
    digest[0] &= 0x7F
    value = uuid.UUID(bytes=bytes(digest), version=4)
    return str(slugid.encode(value))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request creates and reuses.

    ``create`` holds every new task by label (for requested labels, the first copy);
    ``copies`` the taskIds of every copy of each requested label when ``times`` > 1;
    ``reuse`` the tasks of the push this plan depends on; ``edges`` are
    (label, dependency label, edge name) within the closure.
    """

    request_id: str
    requested: tuple[str, ...]
    create: dict[str, str]
    reuse: dict[str, str]
    edges: tuple[tuple[str, str, str], ...]
    times: int = 1
    copies: dict[str, list[str]] | None = None

    @property
    def new_task_count(self) -> int:
        extra = sum(len(ids) - 1 for ids in (self.copies or {}).values())
        return len(self.create) + extra

    def new_tasks(self) -> list[tuple[str, str, int]]:
        """(label, taskId, copy) of every task to create, dependencies first."""
        order = {label: n for n, label in enumerate(self.create)}
        tasks = [(label, task_id, 0) for label, task_id in self.create.items()]
        for label, ids in (self.copies or {}).items():
            tasks.extend((label, task_id, n) for n, task_id in enumerate(ids) if n)
        return sorted(tasks, key=lambda t: (order[t[0]], t[2]))

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "requested": list(self.requested),
            "times": self.times,
            "create": self.create,
            "copies": self.copies or {},
            "reuse": self.reuse,
            "edges": [list(edge) for edge in self.edges],
            "new_tasks": self.new_task_count,
        }


def _postorder(index: TaskGraphIndex, roots: Sequence[str]) -> list[str]:
    """The closure of ``roots``, every label after all it depends on; cycles are errors."""
    done: set[str] = set()
    on_path: dict[str, int] = {}
    order: list[str] = []
    for root in roots:
        if root in done:
            continue
        stack: list[tuple[str, Any]] = [(root, iter(index.entry(root).dependencies.items()))]
        path = [root]
        on_path[root] = 0
        while stack:
            label, pending = stack[-1]
            for edge, dependency in pending:
                if dependency in done:
                    continue
                if dependency in on_path:
                    cycle = [*path[on_path[dependency] :], dependency]
                    raise GraphError(CYCLE.format(path=" → ".join(f"`{c}`" for c in cycle)))
                if dependency not in index:
                    raise GraphError(
                        MISSING_DEPENDENCY.format(label=label, dependency=dependency, edge=edge)
                    )
                on_path[dependency] = len(path)
                path.append(dependency)
                stack.append((dependency, iter(index.entry(dependency).dependencies.items())))
                break
            else:
                stack.pop()
                path.pop()
                del on_path[label]
                done.add(label)
                order.append(label)
    return order


def cached_elsewhere(
    index: TaskGraphIndex, requested: Sequence[str], existing: Mapping[str, str]
) -> dict[str, list[str]]:
    """Jobs of the closure the push has not built whose ``index-search`` optimization
    names where a copy may be indexed (docker images, toolchains, fetches): label to paths.
    Requested jobs are always built afresh, so they are not among them."""
    wanted = set(requested)
    found: dict[str, list[str]] = {}
    for label in _postorder(index, list(dict.fromkeys(requested))):
        if label in wanted or label in existing:
            continue
        paths = (index.entry(label).optimization or {}).get("index-search")
        if isinstance(paths, list) and paths:
            found[label] = [str(p) for p in paths]
    return found


def plan(
    index: TaskGraphIndex,
    requested: Sequence[str],
    existing: Mapping[str, str],
    *,
    request_id: str,
    times: int = 1,
) -> Plan:
    """Plan ``times`` fresh copies of ``requested`` with the dependencies they need."""
    for label in requested:
        if label not in index:
            raise GraphError(UNKNOWN_LABEL.format(label=label))
    wanted = set(requested)
    order = _postorder(index, list(dict.fromkeys(requested)))
    reused: dict[str, str] = {}
    create: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for label in order:
        dependencies = index.entry(label).dependencies
        edges.extend((label, dependency, edge) for edge, dependency in dependencies.items())
        task_id = existing.get(label)
        if label not in wanted and task_id and all(d in reused for d in dependencies.values()):
            reused[label] = task_id
        else:
            create[label] = task_id_for(request_id, label)
    copies = None
    if times > 1:
        copies = {
            label: [task_id_for(request_id, label, n) for n in range(times)]
            for label in dict.fromkeys(requested)
        }
    return Plan(
        request_id=request_id,
        requested=tuple(dict.fromkeys(requested)),
        create=create,
        reuse=reused,
        edges=tuple(edges),
        times=times,
        copies=copies,
    )
