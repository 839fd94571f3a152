"""Submit a plan's task definitions with createTask: parents first, in parallel, retried.

Task ids are fixed by the plan, so a retried or repeated createTask of the same
definition is answered 200 by the Queue and never makes a duplicate; a 409 means a
different task already holds the id, which is reported, not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from taskcluster.exceptions import TaskclusterRestFailure

from bot.graph import NewTask
from bot.tc.retry import backoff, is_transient

log = logging.getLogger(__name__)


class QueueClient(Protocol):
    async def createTask(self, taskId: str, payload: dict[str, Any]) -> Any: ...  # noqa: N802, N803


@dataclass(frozen=True, slots=True)
class Submitted:
    """What became of one task: created (or already there), or why not."""

    label: str
    task_id: str
    ok: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    concurrency: int = 16
    attempts: int = 8


async def _create(queue: QueueClient, task: NewTask, policy: SubmitPolicy) -> Submitted:
    for attempt in range(1, policy.attempts + 1):
        try:
            await queue.createTask(task.task_id, task.definition)
            return Submitted(task.label, task.task_id, True, attempt)
        except Exception as error:
            if not is_transient(error) or attempt == policy.attempts:
                return Submitted(task.label, task.task_id, False, attempt, _describe(error))
            log.info("createTask %s (%s) failed, retrying: %s", task.task_id, task.label, error)
            await asyncio.sleep(backoff(attempt))
    raise AssertionError("unreachable")


def _describe(error: BaseException) -> str:
    if isinstance(error, TaskclusterRestFailure):
        code = error.body.get("code") if isinstance(error.body, dict) else None
        return f"{error.status_code} {code or ''}: {error}".strip()
    return f"{type(error).__name__}: {error}"


async def submit(
    queue: QueueClient, tasks: Sequence[NewTask], policy: SubmitPolicy = SubmitPolicy()
) -> list[Submitted]:
    """Create every task once all its dependencies in ``tasks`` exist; results in input order.

    A task whose dependency could not be created is not attempted (the Queue would refuse
    it); it is reported with the reason.
    """
    by_id = {t.task_id: t for t in tasks}
    done: dict[str, asyncio.Future[Submitted]] = {
        t.task_id: asyncio.get_running_loop().create_future() for t in tasks
    }
    gate = asyncio.Semaphore(policy.concurrency)

    async def run(task: NewTask) -> None:
        for dependency in task.definition.get("dependencies", []):
            if dependency in done and dependency != task.task_id:
                parent = await done[dependency]
                if not parent.ok:
                    done[task.task_id].set_result(
                        Submitted(
                            task.label,
                            task.task_id,
                            False,
                            0,
                            f"dependency {by_id[dependency].label} was not created",
                        )
                    )
                    return
        async with gate:
            done[task.task_id].set_result(await _create(queue, task, policy))

    await asyncio.gather(*(run(t) for t in tasks))
    return [done[t.task_id].result() for t in tasks]
