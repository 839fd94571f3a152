"""The Index service's namespaces: insert, find, and tasks indexed by their routes on completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.localtc.errors import not_found
from bot.localtc.queue import Queue, TaskRecord
from bot.tctime import parse_time


@dataclass
class IndexedTask:
    namespace: str
    task_id: str
    rank: int
    data: dict[str, Any]
    expires: str

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "taskId": self.task_id,
            "rank": self.rank,
            "data": self.data,
            "expires": self.expires,
        }


class Index:
    """Namespaces to tasks; tasks with ``index.<namespace>`` routes are indexed on completion."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.entries: dict[str, IndexedTask] = {}
        queue.resolved_listeners.append(self._on_resolved)

    def insert(
        self, namespace: str, task_id: str, rank: int, data: dict[str, Any], expires: str
    ) -> IndexedTask:
        """Index a task; an existing entry of a higher rank is kept (equal ranks: the newer)."""
        current = self.entries.get(namespace)
        if current is None or rank >= current.rank:
            self.entries[namespace] = IndexedTask(namespace, task_id, rank, data, expires)
        return self.entries[namespace]

    def find(self, namespace: str) -> IndexedTask:
        entry = self.entries.get(namespace)
        if entry is None or parse_time(entry.expires) <= self.queue.now():
            raise not_found(f"Indexed task not found: {namespace}")
        return entry

    def list_tasks(self, namespace: str) -> list[IndexedTask]:
        """The unexpired tasks indexed directly under ``namespace`` (``<namespace>.<name>``,
        not deeper; ``""`` is the root), ordered by name; none for an unknown namespace."""
        now = self.queue.now()
        found = [
            entry
            for path, entry in self.entries.items()
            if _parent(path) == namespace and parse_time(entry.expires) > now
        ]
        return sorted(found, key=lambda entry: entry.namespace)

    def _on_resolved(self, record: TaskRecord) -> None:
        if record.state != "completed":
            return
        rank = record.definition.get("extra", {}).get("index", {}).get("rank", 0)
        for route in record.definition["routes"]:
            if route.startswith("index."):
                self.insert(
                    route.removeprefix("index."),
                    record.task_id,
                    int(rank) if isinstance(rank, int) else 0,
                    {},
                    record.definition["expires"],
                )


def _parent(path: str) -> str:
    """The namespace an index path is in: all but its last name (the root for one name)."""
    return path.rpartition(".")[0]
