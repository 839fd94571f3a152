"""Loaded task graphs kept by decision taskId, the least recently used dropped past a size bound."""

from __future__ import annotations

from collections import OrderedDict

from bot.graph.index import Skeleton, TaskGraphIndex

# Resident bytes of a skeleton (labels, entries, attributes, dependencies, indexes) per
# task, measured on Gecko-shaped graphs in a fresh process: bench/many_pushes_bench.py
# prints the measured value next to this one.
SKELETON_BYTES_PER_TASK = 2_100


class GraphCache:
    """At most ``max_mb`` megabytes of task graphs, counted as what they hold: each graph's
    bodies (its whole document until ``pack``, then its zlib blocks) and each skeleton
    once, however many of the kept graphs share it."""

    def __init__(self, max_mb: float = 1024) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._graphs: OrderedDict[str, TaskGraphIndex] = OrderedDict()

    @staticmethod
    def skeleton_cost(skeleton: Skeleton) -> int:
        return skeleton.tasks * SKELETON_BYTES_PER_TASK

    @classmethod
    def cost(cls, index: TaskGraphIndex) -> int:
        """What ``index`` holds, alone."""
        return index.nbytes_held + cls.skeleton_cost(index.skeleton)

    @property
    def used(self) -> int:
        """What the kept graphs hold now (less once their bodies are packed)."""
        graphs = {id(g): g for g in self._graphs.values()}
        skeletons = {id(g.skeleton): g.skeleton for g in graphs.values()}
        return sum(g.nbytes_held for g in graphs.values()) + sum(
            self.skeleton_cost(s) for s in skeletons.values()
        )

    def get(self, decision_task_id: str) -> TaskGraphIndex | None:
        index = self._graphs.get(decision_task_id)
        if index is not None:
            self._graphs.move_to_end(decision_task_id)
        return index

    def put(self, decision_task_id: str, index: TaskGraphIndex) -> None:
        """Keep ``index``; a graph larger than the whole bound is used but not kept."""
        self._graphs.pop(decision_task_id, None)
        if self.cost(index) > self.max_bytes:
            return
        self._graphs[decision_task_id] = index
        while len(self._graphs) > 1 and self.used > self.max_bytes:
            self._graphs.popitem(last=False)

    def __contains__(self, decision_task_id: object) -> bool:
        return decision_task_id in self._graphs

    def __len__(self) -> int:
        return len(self._graphs)
