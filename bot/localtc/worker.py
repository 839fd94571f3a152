"""A simulated worker: claims pending tasks and resolves them after a delay, by rules on labels.

Given the local Taskcluster (``services``), it also runs action tasks: their callback
creates, reruns or cancels tasks (``bot.localtc.callbacks``) and decides their outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.graph.materialize import task_label
from bot.localtc.callbacks import is_action_task, run_callback
from bot.localtc.errors import TaskclusterError
from bot.localtc.hooks import ACTION_WORKER_TYPE
from bot.localtc.queue import Queue, TaskRecord
from bot.localtc.server import LocalTaskcluster


@dataclass(frozen=True, slots=True)
class Rule:
    """Tasks whose label matches ``pattern`` (a glob) end as ``outcome``."""

    pattern: str
    outcome: str  # completed, failed or exception


@dataclass
class SimulatedWorker:
    """Runs every pending task of ``queue`` for ``seconds`` and resolves it by the first rule
    that matches its label (``default`` when none does). Decision-type tasks are left
    alone, except action tasks when ``services`` is given: their callback decides."""

    queue: Queue
    rules: Sequence[Rule] = ()
    default: str = "completed"
    seconds: float = 1.0
    tick: float = 0.05
    worker_group: str = "local"
    worker_id: str = "simulated-worker"
    services: LocalTaskcluster | None = None
    # Asked first how a task ends (a chain of pushes: by the push it is on); None: the rules.
    decide: Callable[[TaskRecord], str | None] | None = None

    def takes(self, record: TaskRecord) -> bool:
        """Whether this worker runs ``record`` now."""
        if record.state != "pending":
            return False
        if record.definition.get("workerType") != ACTION_WORKER_TYPE:
            return True
        return self.services is not None and is_action_task(record.definition)

    def outcome(self, record: TaskRecord) -> str:
        if self.decide is not None and (decided := self.decide(record)) is not None:
            return decided
        label = task_label(record.definition)
        for rule in self.rules:
            if fnmatch.fnmatchcase(label, rule.pattern):
                return rule.outcome
        return self.default

    async def run(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            self.queue.check_deadlines()
            for record in list(self.queue.tasks.values()):
                if self.takes(record):
                    run_id = self.queue.claim(record.task_id, self.worker_group, self.worker_id)
                    job = asyncio.create_task(self._finish(record, run_id))
                    running.add(job)
                    job.add_done_callback(running.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):  # wait_for could swallow a cancel
                    await stop.wait()
        for job in running:
            job.cancel()

    async def _finish(self, record: TaskRecord, run_id: int) -> None:
        await asyncio.sleep(self.seconds)
        if record.state != "running":
            return  # cancelled or past its deadline meanwhile
        if self.services is not None and is_action_task(record.definition):
            outcome = run_callback(self.services, record.task_id, run_id)
        else:
            outcome = self.outcome(record)
        reason = "worker-shutdown" if outcome == "exception" else None
        # cancelled or past its deadline meanwhile: already resolved, nothing to do
        with contextlib.suppress(TaskclusterError):
            self.queue.resolve(record.task_id, run_id, outcome, reason)
