"""A push's own evidence about a job, read from its task group on the local Taskcluster: every
ended run of every task of the job counts, exceptions do not."""

from __future__ import annotations

from bot.embedded import Embedded
from bot.localtc.chain import Breakage, seed_chain
from bot.tc.evidence import Runs, runs_of
from tests.test_console_e2e import env

__all__ = ["env"]  # the console tests' embedded local Taskcluster, for pytest to find


async def test_every_ended_run_of_the_jobs_tasks_counts_and_exceptions_do_not(
    env: Embedded,
) -> None:
    chain = seed_chain(env.tc, 2, tasks=300, project="mozilla-central", breakage=Breakage())
    push = chain.pushes[-1]
    label, task_id = next(
        (label, task) for label, task in push.push.label_to_taskid.items()
        if label.startswith("test-")
    )  # fmt: skip
    queue, clients = env.tc.queue, env.bot.clients.queue
    assert queue.tasks[task_id].state == "completed"  # the push's own run
    assert await runs_of(clients, push.decision_task_id, label) == Runs(1, 0)
    # run again twice: one failure, one exception (a worker lost), and a run still going
    for outcome in ("failed", "exception"):
        queue.rerun(task_id)
        run = queue.claim(task_id, "local", "w")
        queue.resolve(task_id, run, outcome, "worker-shutdown" if outcome == "exception" else None)
    queue.rerun(task_id)
    queue.claim(task_id, "local", "w")
    assert await runs_of(clients, push.decision_task_id, label) == Runs(1, 1)
    # another job's runs, and another push's, are not this one's
    other = next(x for x in push.push.label_to_taskid if x.startswith("test-") and x != label)
    assert await runs_of(clients, push.decision_task_id, other) == Runs(1, 0)
    earlier = chain.pushes[0]
    expected = Runs(1, 0) if label in earlier.push.label_to_taskid else Runs(0, 0)
    assert await runs_of(clients, earlier.decision_task_id, label) == expected
