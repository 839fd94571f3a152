"""Submitting plans to the local Taskcluster: order, idempotency, faults, refusals."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from bot.graph import Materializer, NewTask, TaskGraphIndex, plan
from bot.localtc.server import Faults
from bot.localtc.synthetic import generate, labels_planning
from bot.tc.submit import SubmitPolicy, submit
from tests.tcfixtures import Running, local_tc, new_id, start, stop, task_definition

__all__ = ["local_tc"]


async def plan_of(count: int, running: Running, decision: str) -> list[NewTask]:
    """Exactly ``count`` new tasks planned on a generated Gecko-shaped push."""
    push = generate(3000, seed=11, already_run=0.0)
    index = TaskGraphIndex(msgspec.json.encode(push.graph))
    result = plan(index, labels_planning(index, count), {}, request_id="r500")
    assert result.new_task_count == count
    materializer = Materializer(
        index, decision_task_id=decision, scheduler_id="gecko-level-3", root_url=running.tc.root_url
    )
    return materializer.definitions(result, dt.datetime.now(dt.UTC))


async def decision_task(running: Running) -> str:
    decision = new_id()
    await running.queue().createTask(
        decision, task_definition(taskGroupId=decision, schedulerId="gecko-level-3")
    )
    return decision


async def test_parents_are_created_before_children(local_tc: Running) -> None:
    decision = await decision_task(local_tc)
    tasks = await plan_of(60, local_tc, decision)
    results = await submit(local_tc.queue(), tasks, SubmitPolicy(concurrency=8))
    assert all(r.ok for r in results)
    created_order = list(local_tc.tc.queue.tasks)
    for task in tasks:
        for dependency in task.definition["dependencies"]:
            assert created_order.index(dependency) < created_order.index(task.task_id)
    # submitting the same plan again creates nothing new
    again = await submit(local_tc.queue(), tasks)
    assert all(r.ok for r in again)
    assert len(local_tc.tc.queue.tasks) == len(tasks) + 1


async def test_500_tasks_under_30_percent_faults_make_exactly_500() -> None:
    running = await start(
        Faults(
            error_rate=0.12,
            reset_rate=0.09,
            lost_reply_rate=0.09,
            only="/api/queue/v1/task/",
            seed=5,
        )
    )
    try:
        faults = running.tc.faults
        running.tc.faults = Faults()
        decision = await decision_task(running)
        tasks = await plan_of(500, running, decision)
        running.tc.faults = faults
        queue = running.queue(maxRetries=0)
        results = await submit(queue, tasks, SubmitPolicy(concurrency=16, attempts=12))
        assert [r.error for r in results if not r.ok] == []
        assert running.tc.injected > 150  # the faults really happened, about 30% of calls
        assert any(r.attempts > 1 for r in results)
        group = running.tc.queue.groups[decision]["taskIds"]
        assert len(group) == 501  # the decision task and exactly the 500 planned
        assert len(set(group)) == len(group)
        assert set(group) == {decision} | {t.task_id for t in tasks}
    finally:
        await stop(running)


async def test_a_conflicting_task_is_reported_not_retried(local_tc: Running) -> None:
    decision = await decision_task(local_tc)
    tasks = await plan_of(40, local_tc, decision)
    first = tasks[0]
    squatter = {**first.definition, "priority": "highest"}
    await local_tc.queue().createTask(first.task_id, squatter)
    results = await submit(local_tc.queue(), tasks)
    by_id = {r.task_id: r for r in results}
    assert not by_id[first.task_id].ok
    assert by_id[first.task_id].attempts == 1
    assert "409" in (by_id[first.task_id].error or "")
    dependents = [t for t in tasks if first.task_id in t.definition["dependencies"]]
    assert dependents
    for task in dependents:
        assert by_id[task.task_id].error == f"dependency {first.label} was not created"


@pytest.mark.parametrize("status", [403, 400])
async def test_refusals_are_not_retried(local_tc: Running, status: int) -> None:
    decision = await decision_task(local_tc)
    task = (await plan_of(40, local_tc, decision))[0]
    if status == 403:
        queue = local_tc.queue(authorizedScopes=["queue:status:*"])
        broken = task
    else:
        queue = local_tc.queue()
        broken = NewTask(task.label, task.task_id, 0, {**task.definition, "retries": 500})
    (result,) = await submit(queue, [broken])
    assert not result.ok
    assert result.attempts == 1
    assert str(status) in (result.error or "")
