"""A chain of consecutive pushes on the local Taskcluster: each its own decision task, graph,
label-to-taskid and pushlog id, indexed as Gecko indexes them, with jobs that break at a push."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import aiohttp
import pytest
import taskcluster.aio as tc_aio
import yaml

from bot.graph.materialize import task_label
from bot.localtc.chain import Breakage, seed_chain
from bot.localtc.server import LocalTaskcluster
from bot.localtc.worker import SimulatedWorker
from tests.conftest import ROOT
from tests.tcfixtures import new_id, task_definition

BROKEN = "test-*xpcshell-spi-nw-*"


def artifact(tc: LocalTaskcluster, task_id: str, name: str) -> bytes:
    return bytes(tc.queue.artifact(task_id, None, name).content)


def test_every_push_of_the_chain_is_its_own_and_indexed_by_revision_and_pushlog_id() -> None:
    tc = LocalTaskcluster()
    chain = seed_chain(tc, 4, tasks=300, project="autoland")
    pushes = chain.pushes
    assert [p.pushlog_id for p in pushes] == ["1", "2", "3", "4"]
    assert len({p.revision for p in pushes}) == 4
    assert len({p.decision_task_id for p in pushes}) == 4
    graphs = [
        json.loads(artifact(tc, p.decision_task_id, "public/full-task-graph.json")) for p in pushes
    ]
    assert all(g.keys() == graphs[0].keys() for g in graphs)  # the same jobs on every push
    ran = [p.push.label_to_taskid for p in pushes]
    assert not set(ran[0].values()) & set(ran[1].values())  # each push its own tasks
    for push in pushes:
        for path in push.index_paths():
            if ".latest." in path:
                continue
            assert tc.index.find(path).task_id == push.decision_task_id
        parameters = yaml.safe_load(artifact(tc, push.decision_task_id, "public/parameters.yml"))
        assert (parameters["pushlog_id"], parameters["head_rev"]) == (
            push.pushlog_id,
            push.revision,
        )
    assert "gecko.v2.autoland.pushlog-id.3.decision" in pushes[2].index_paths()
    latest = tc.index.find("gecko.v2.autoland.latest.taskgraph.decision")
    assert latest.task_id == pushes[-1].decision_task_id


def test_jobs_break_at_a_push_and_pass_before_it() -> None:
    tc = LocalTaskcluster()
    chain = seed_chain(tc, 6, tasks=400, breakage=Breakage((BROKEN,), break_at=4))
    runs = 0
    for number, push in enumerate(chain.pushes, start=1):
        for label, task_id in push.push.label_to_taskid.items():
            state = tc.queue.tasks[task_id].state
            if chain.breakage.broken(label):
                runs += 1
                assert state == ("failed" if number >= 4 else "completed"), (number, label)
            else:
                assert state == "completed", (number, label)
    assert runs >= 3  # the broken jobs ran on some pushes


def test_flaky_jobs_fail_before_the_break_as_often_as_asked() -> None:
    always = Breakage((BROKEN,), break_at=10, flaky=1.0)
    never = Breakage((BROKEN,), break_at=10, flaky=0.0)
    label = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"
    assert {always.outcome(label, n) for n in range(1, 10)} == {"failed"}
    assert {never.outcome(label, n) for n in range(1, 10)} == {"completed"}
    tenth = Breakage((BROKEN,), break_at=1000, flaky=0.1, seed=7)
    failed = sum(tenth.outcome(label, n) == "failed" for n in range(1, 1000))
    assert 60 <= failed <= 140
    with pytest.raises(ValueError, match="probability"):
        Breakage((BROKEN,), flaky=1.5)


async def test_tasks_scheduled_later_end_as_their_push_says() -> None:
    """A backfill or a retrigger on push 2 passes and on push 5 fails, as the pushes' own
    runs did: the simulated worker asks the chain."""
    tc = LocalTaskcluster()
    chain = seed_chain(tc, 5, tasks=300, breakage=Breakage((BROKEN,), break_at=3))
    label = next(label for label in chain.pushes[0].push.graph if chain.breakage.broken(label))
    created = {}
    for number in (2, 5):
        task_id = new_id()
        definition = task_definition(tags={"label": label})
        definition["taskGroupId"] = chain.pushes[number - 1].decision_task_id
        definition["schedulerId"] = chain.pushes[number - 1].scheduler_id
        tc.queue.create(task_id, tc.queue.check_definition(task_id, definition))
        created[number] = task_id
    elsewhere = new_id()
    tc.queue.create(elsewhere, tc.queue.check_definition(elsewhere, task_definition()))
    worker = SimulatedWorker(tc.queue, seconds=0.0, tick=0.01, decide=chain.outcome)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(10):
            while any(tc.queue.tasks[t].state != "completed" and tc.queue.tasks[t].state != "failed"
                      for t in [*created.values(), elsewhere]):  # fmt: skip
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await running
    assert task_label(tc.queue.tasks[created[2]].definition) == label
    assert tc.queue.tasks[created[2]].state == "completed"
    assert tc.queue.tasks[created[5]].state == "failed"
    assert tc.queue.tasks[elsewhere].state == "completed"  # not the chain's: the rules


def run_localtc(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "localtc", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


async def test_the_command_line_seeds_a_chain_and_lists_its_pushes() -> None:
    process = run_localtc(
        "--seed-pushes", "3", "--tasks", "300", "--fail", BROKEN, "--break-at", "2", "--worker"
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert [p["pushlogId"] for p in info["pushes"]] == ["1", "2", "3"]
        latest = info["pushes"][-1]
        assert (info["revision"], info["decisionTaskId"]) == (
            latest["revision"],
            latest["decisionTaskId"],
        )
        options = {
            "rootUrl": info["rootUrl"],
            "credentials": {"clientId": info["clientId"], "accessToken": info["accessToken"]},
        }
        async with aiohttp.ClientSession() as session:
            index = tc_aio.Index(options, session=session)
            for push in info["pushes"]:
                found = await index.findTask(
                    f"gecko.v2.autoland.pushlog-id.{push['pushlogId']}.decision"
                )
                assert found["taskId"] == push["decisionTaskId"]
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--break-at", "2", "--fail", "x"], "add --seed-pushes N"),
        (["--seed-pushes", "3", "--break-at", "2"], "needs --fail GLOB"),
        (["--seed-pushes", "3", "--fail", "x", "--break-at", "4"], "from 1 to 3"),
        (["--seed-pushes", "0"], "at least 1 push"),
        (["--seed-pushes", "3", "--flaky", "2"], "probability"),
        (["--seed-pushes", "2", "--pull-request", "o/r#1"], "choose one"),
        (["--seed-pushes", "3", "--fail", "x", "--flaky", "0.5"], "add --break-at K"),
        (["--seed-push", "--tasks", "0"], "at least 1 task"),
        (["--seed-push", "--project", "a.b"], "must be a project name"),
    ],
)
def test_arguments_that_do_not_fit_together_are_refused(args: list[str], said: str) -> None:
    process = run_localtc(*args)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert said in err
