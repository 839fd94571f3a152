"""Loaded task graphs kept by decision taskId, the least recently used dropped past a size bound."""

from __future__ import annotations

from collections import OrderedDict

from bot.graph.index import TaskGraphIndex

# Measured: an index holds its graph's bytes plus about a third again in structures.
OVERHEAD = 1.35


class GraphCache:
    """At most ``max_mb`` megabytes of task graphs (estimated from their size on the wire)."""

    def __init__(self, max_mb: float = 1024) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._graphs: OrderedDict[str, TaskGraphIndex] = OrderedDict()
        self.used = 0

    @staticmethod
    def cost(index: TaskGraphIndex) -> int:
        return int(index.nbytes * OVERHEAD)

    def get(self, decision_task_id: str) -> TaskGraphIndex | None:
        index = self._graphs.get(decision_task_id)
        if index is not None:
            self._graphs.move_to_end(decision_task_id)
        return index

    def put(self, decision_task_id: str, index: TaskGraphIndex) -> None:
        """Keep ``index``; a graph larger than the whole bound is used but not kept."""
        old = self._graphs.pop(decision_task_id, None)
        if old is not None:
            self.used -= self.cost(old)
        if self.cost(index) > self.max_bytes:
            return
        self._graphs[decision_task_id] = index
        self.used += self.cost(index)
        while self.used > self.max_bytes:
            _, evicted = self._graphs.popitem(last=False)
            self.used -= self.cost(evicted)

    def __contains__(self, decision_task_id: object) -> bool:
        return decision_task_id in self._graphs

    def __len__(self) -> int:
        return len(self._graphs)
