"""A chain of consecutive pushes of one project, the history sheriffs work across: every push
the same graph with its own revision, decision task and tasks, and jobs that break at a push
(and fail now and then before it)."""

from __future__ import annotations

import fnmatch
import functools
import random
from dataclasses import dataclass, field

from bot.graph import task_id_for
from bot.graph.materialize import task_label
from bot.localtc.queue import TaskRecord
from bot.localtc.seed import SeededPush, register_action_hooks, seed_push
from bot.localtc.server import LocalTaskcluster
from bot.localtc.synthetic import SyntheticPush, generate


@dataclass
class Breakage:
    """Jobs matching ``globs`` fail from push ``break_at`` on (1 is the oldest; None: on
    every push), and before it with probability ``flaky``; everything else completes."""

    globs: tuple[str, ...] = ()
    break_at: int | None = None
    flaky: float = 0.0
    seed: int = 1
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.flaky <= 1.0:
            raise ValueError(f"flaky must be a probability (0 to 1), not {self.flaky}")
        if self.break_at is not None and self.break_at < 1:
            raise ValueError(f"break_at counts pushes from 1, not {self.break_at}")
        self._random = random.Random(self.seed)

    def broken(self, label: str) -> bool:
        return any(fnmatch.fnmatchcase(label, glob) for glob in self.globs)

    def outcome(self, label: str, push_number: int) -> str:
        """How a run of ``label`` on push ``push_number`` ends."""
        if not self.broken(label):
            return "completed"
        if self.break_at is None or push_number >= self.break_at:
            return "failed"
        return "failed" if self._random.random() < self.flaky else "completed"


@dataclass(frozen=True, slots=True)
class Chain:
    """The seeded pushes, oldest first, and what breaks where."""

    pushes: tuple[SeededPush, ...]
    breakage: Breakage

    def number_of_group(self, task_group_id: str) -> int | None:
        """Which push (1 the oldest) a task group is, or None."""
        for number, push in enumerate(self.pushes, start=1):
            if push.decision_task_id == task_group_id:
                return number
        return None

    def outcome(self, record: TaskRecord) -> str | None:
        """How the simulated worker ends a task of the chain (one scheduled later, a
        backfill or a retrigger, ends as the push's own run would); None: not the chain's."""
        number = self.number_of_group(str(record.definition.get("taskGroupId", "")))
        if number is None:
            return None
        return self.breakage.outcome(task_label(record.definition), number)


def _ended(breakage: Breakage, number: int, label: str) -> str:
    return breakage.outcome(label, number)


def push_of(
    graph: SyntheticPush, *, key: str, seed: int, already_run: float = 0.3
) -> SyntheticPush:
    """The push ``key`` of a chain sharing ``graph``: its own task ids, and a share of the
    tests run (every build and support task is)."""
    rng = random.Random(seed)
    ran = {
        label: task_id_for(f"decision-{key}", label)
        for label in graph.graph
        if not label.startswith("test-") or rng.random() < already_run
    }
    return SyntheticPush(graph.graph, ran)


def seed_chain(
    tc: LocalTaskcluster,
    count: int,
    *,
    tasks: int = 3000,
    project: str = "autoland",
    breakage: Breakage | None = None,
    actions: bool = True,
    git: bool = False,
) -> Chain:
    """``count`` consecutive pushes of ``project`` in ``tc`` (pushlog ids 1 to ``count``),
    each indexed by revision and pushlog id, the last one ``latest``. ``git``: pushes to a
    git branch instead, with no pushlog: each says the head before it (``base_rev``) and is
    indexed by revision only."""
    if count < 1:
        raise ValueError(f"a chain has at least one push, not {count}")
    breakage = breakage or Breakage()
    graph = generate(tasks, seed=1)
    pushes: list[SeededPush] = []
    for number in range(1, count + 1):
        push = seed_push(
            tc,
            tasks=tasks,
            seed=number,
            project=project,
            push=push_of(graph, key=f"{project}-{number}", seed=number),
            outcome=functools.partial(_ended, breakage, number),
            after=(pushes[-1].revision if pushes else "0" * 40) if git else None,
        )
        if actions:
            register_action_hooks(tc, push)
        pushes.append(push)
    return Chain(tuple(pushes), breakage)
