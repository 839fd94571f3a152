"""What a push already says of a job: the runs of its tasks of that label that ended, the
push's own and those added since (retriggers, backfills, reruns), as a culprit search counts
them before scheduling more."""

from __future__ import annotations

from dataclasses import dataclass

from bot.graph.materialize import task_label
from bot.tc.groups import GroupLister, group_entries


@dataclass(frozen=True, slots=True)
class Runs:
    """Ended runs of one job on one push: passed (completed) and failed. A run that ended
    in an exception (the infrastructure's, or a cancel) says nothing of the job."""

    passed: int = 0
    failed: int = 0


async def runs_of(queue: GroupLister, group: str, label: str) -> Runs:
    """The ended runs of job ``label`` among task group ``group``'s tasks."""
    passed = failed = 0
    async for entry in group_entries(queue, group):
        if task_label(entry.get("task") or {}) != label:
            continue
        for run in (entry.get("status") or {}).get("runs") or []:
            state = run.get("state") if isinstance(run, dict) else None
            passed += state == "completed"
            failed += state == "failed"
    return Runs(passed, failed)
