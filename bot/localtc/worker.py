"""A simulated worker: claims pending tasks and resolves them after a delay, by rules on labels.

Given the local Taskcluster (``services``), it also runs action tasks: their callback
creates, reruns or cancels tasks (``bot.localtc.callbacks``) and decides their outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.graph.materialize import task_label
from bot.localtc.callbacks import is_action_task, run_callback
from bot.localtc.errors import TaskclusterError
from bot.localtc.hooks import ACTION_WORKER_TYPE
from bot.localtc.queue import Artifact, Queue, TaskRecord
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
            if outcome in ("completed", "failed"):
                with contextlib.suppress(TaskclusterError):
                    for artifact in logs_of(record, outcome):
                        self.queue.put_artifact(record.task_id, run_id, artifact)
        reason = "worker-shutdown" if outcome == "exception" else None
        # cancelled or past its deadline meanwhile: already resolved, nothing to do
        with contextlib.suppress(TaskclusterError):
            self.queue.resolve(record.task_id, run_id, outcome, reason)


LOG = "public/logs/live_backing.log"


def logs_of(record: TaskRecord, outcome: str) -> list[Artifact]:
    """What a worker uploads as a run ends: its log, and for a failed test the harness's
    error summary (mozlog's errorsummary: JSON lines, as Gecko's test tasks upload under
    ``public/test_info/<suite>_errorsummary.log`` and Treeherder reads)."""
    label = task_label(record.definition)
    expires = str(record.definition["expires"])
    failed = outcome == "failed"
    text = f"[taskcluster] {label}\n[task] {'TEST-UNEXPECTED-FAIL' if failed else 'done'}\n"
    made = [Artifact(LOG, text.encode(), "text/plain; charset=utf-8", expires)]
    if failed and label.startswith("test-"):
        words = label.rsplit("/", 1)[-1].split("-")  # opt-xpcshell-spi-nw-1: xpcshell
        suite = words[1] if len(words) > 1 else "test"
        test = f"{suite}/test_{zlib.crc32(label.encode()) % 1000:03d}.js"
        lines = [
            {"action": "test_groups", "groups": [suite], "line": 0},
            {
                "action": "test_result",
                "test": test,
                "subtest": None,
                "group": suite,
                "status": "FAIL",
                "expected": "PASS",
                "message": "assertion failed: got false, expected true",
                "known_intermittent": [],
                "line": 12,
            },
            {
                "action": "log",
                "level": "ERROR",
                "message": f"{test} left a window open",
                "line": 30,
            },
            {"action": "group_result", "group": suite, "status": "ERROR", "line": 31},
        ]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        name = f"public/test_info/{suite}_errorsummary.log"
        made.append(Artifact(name, body, "text/plain; charset=utf-8", expires))
    return made
