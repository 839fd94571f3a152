"""The simulated worker runs pending tasks and resolves them by label rules."""

from __future__ import annotations

import asyncio

from bot.localtc.worker import Rule, SimulatedWorker
from tests.tcfixtures import Running, local_tc, new_id, task_definition

__all__ = ["local_tc"]


async def test_worker_resolves_by_rules_and_unblocks_dependents(local_tc: Running) -> None:
    queue = local_tc.tc.queue
    build, test_ok, test_bad, flaky = new_id(), new_id(), new_id(), new_id()
    definitions = {
        build: task_definition(tags={"label": "build-linux64/debug"}),
        test_ok: task_definition(
            tags={"label": "test-linux64/debug-xpcshell-1"}, dependencies=[build]
        ),
        test_bad: task_definition(
            tags={"label": "test-linux64/debug-mochitest-3"}, dependencies=[build]
        ),
        flaky: task_definition(
            tags={"label": "test-linux64/debug-reftest-2"}, dependencies=[build]
        ),
    }
    for task_id, definition in definitions.items():
        queue.create(task_id, queue.check_definition(task_id, definition))
    worker = SimulatedWorker(
        queue,
        rules=[Rule("*-mochitest-*", "failed"), Rule("*-reftest-*", "exception")],
        seconds=0.05,
        tick=0.01,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if all(
            queue.tasks[t].state not in ("unscheduled", "pending", "running") for t in definitions
        ):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await running
    states = {t: queue.tasks[t].state for t in definitions}
    assert states == {
        build: "completed",
        test_ok: "completed",
        test_bad: "failed",
        flaky: "exception",
    }
    assert queue.tasks[flaky].status["runs"][-1]["reasonResolved"] == "worker-shutdown"
    assert queue.tasks[test_ok].status["runs"][0]["workerId"] == "simulated-worker"
