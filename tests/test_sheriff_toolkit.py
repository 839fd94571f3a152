"""A sheriff's tools on the embedded local Taskcluster: `rerun TASKID…` (the same taskIds, the
Queue's rerunTask), `retrigger exception`, and the failed jobs named with their links when a
request ends."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
import slugid

from bot.adapters.console import ConsoleReplier
from bot.commands.push import suite_of
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.request import Request
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded
from bot.localtc.chain import seed_chain
from bot.localtc.seed import seed_push
from bot.localtc.server import Faults
from bot.reporting import Failure
from grammar import ParseError, Rerun, Retrigger, parse_command
from tests.conftest import reference_path
from tests.test_console_e2e import env

__all__ = ["env"]  # the console tests' embedded local Taskcluster, for pytest to find


async def say(env: Embedded, text: str, *, project: str | None = None) -> str:
    out = io.StringIO()
    request = Request(
        source="console", actor="sheriff", place="console", text=text, direct=True,
        project=project,
    )  # fmt: skip
    await env.bot.handle(request, ConsoleReplier(out))
    assert await env.bot.idle(30)
    return out.getvalue()


def ran(env: Embedded, state: str) -> tuple[str, str]:
    """(label, taskId) of a task the push ran that ended ``state``."""
    for label, task_id in env.push.push.label_to_taskid.items():
        if env.tc.queue.tasks[task_id].state == state and label.startswith("test-"):
            return label, task_id
    raise AssertionError(f"no {state} task on the push")


def ended_in_exception(env: Embedded, task_id: str) -> None:
    """The task's latest run ends in an exception (its worker was shut down), at once."""
    queue = env.tc.queue
    queue.rerun(task_id)
    run = queue.claim(task_id, "local", "spot-node")
    queue.resolve(task_id, run, "exception", "worker-shutdown")


def test_the_grammar_of_rerun_and_retrigger_exception() -> None:
    task = "fuCPrKG2T62-4YH1tWYa7Q"
    command = parse_command(f"rerun {task} -uCPrKG2T62-4YH1tWYa7Q {task}")
    assert isinstance(command, Rerun)
    # a taskId may start with a dash; the same one twice is one
    assert [t.text for t in command.tasks] == [task, "-uCPrKG2T62-4YH1tWYa7Q"]
    assert command.canonical() == f"rerun {task} -uCPrKG2T62-4YH1tWYa7Q"
    retrigger = parse_command("rt exceptions x2")
    assert isinstance(retrigger, Retrigger)
    assert (retrigger.exception, retrigger.failed, retrigger.times) == (True, False, 2)
    assert retrigger.canonical() == "retrigger exception x2"
    with pytest.raises(ParseError) as error:
        parse_command("rerun mochitest-1")
    assert error.value.column == 7
    assert "`retrigger mochitest-1`" in str(error.value)
    with pytest.raises(ParseError, match="needs the taskIds"):
        parse_command("rerun")
    with pytest.raises(ParseError, match="keep one"):
        parse_command("retrigger exception failed")
    for odd in ("pushes ²", "pushes ٣", "pushes 0", "pushes 51"):  # digits of other scripts too
        with pytest.raises(ParseError):
            parse_command(odd)
    with pytest.raises(ParseError) as request_id:
        parse_command("rerun r7f3a")
    assert "retrigger" not in str(request_id.value)  # no advice to retrigger a request id


async def test_a_failed_task_runs_again_under_its_own_task_id(env: Embedded) -> None:
    label, task_id = ran(env, "failed")
    output = await say(env, f"rerun {task_id}")
    assert "Running again, same taskId" in output
    assert label in output
    assert f"/tasks/{task_id}" in output
    runs = env.tc.queue.tasks[task_id].status["runs"]
    assert [r["reasonCreated"] for r in runs][-1] == "rerun"
    assert len(runs) == 2
    log = await env.store.audit_log()
    assert any(entry["action"] == "rerun" for entry in log)


async def test_what_is_not_to_be_rerun_is_refused_with_the_reason(env: Embedded) -> None:
    _, completed = ran(env, "completed")
    unknown = slugid.nice()
    output = await say(env, f"rerun {completed} {unknown}")
    assert "completed: `rerun` is for a task that ended in a failure" in output
    assert f"`retrigger {completed}`" in output
    assert f"`{unknown}`: no such task" in output
    assert len(env.tc.queue.tasks[completed].status["runs"]) == 1


async def test_a_task_of_another_projects_push_is_not_rerun_from_here(env: Embedded) -> None:
    other = seed_push(env.tc, tasks=300, seed=9, project="try")
    task_id = next(iter(other.push.label_to_taskid.values()))
    output = await say(env, f"rerun {task_id}", project=env.push.project)
    assert f"is a task of try, and commands here are for {env.push.project}" in output
    assert len(env.tc.queue.tasks[task_id].status["runs"]) == 1


async def test_retrigger_exception_takes_only_the_exceptions(env: Embedded) -> None:
    nothing = await say(env, "retrigger exception")
    assert "No job ended in an exception" in nothing
    label, task_id = ran(env, "completed")
    ended_in_exception(env, task_id)
    output = await say(env, "retrigger exception")
    planned = {t.label for t in await env.store.plan(_request_id(output)) if t.requested}
    assert planned == {label}
    assert not planned & set(env.push.failed)  # the failures are not exceptions


def _request_id(output: str) -> str:
    found = re.search(r"\[(r[0-9a-f]+)\]", output)
    assert found, output
    return found[1]


async def test_a_finished_request_names_its_failed_jobs_with_their_links(env: Embedded) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={project: ProjectSettings(project, treeherder_url="https://th.example/")},
    )
    doomed = next(  # the demo worker fails these
        label for label in env.push.push.graph if label.endswith("-mochitest-plain-3")
    )
    output = await say(env, f"retrigger {doomed}", project=project)
    rid = _request_id(output)
    (task,) = [t for t in await env.store.plan(rid) if t.requested]
    root = env.bot.clients.queue.options["rootUrl"]
    revision = env.push.revision
    assert "finished: 0 ok, 1 failed" in output, output
    assert (
        f"{doomed} failed: {root}/tasks/{task.task_id} "
        f"log: {root}/api/queue/v1/task/{task.task_id}/runs/0/artifacts/"
        "public/logs/live_backing.log "
        f"treeherder: https://th.example/jobs?repo={project}&revision={revision}"
        f"&selectedTaskRun={task.task_id}.0"
    ) in [line.strip() for line in output.splitlines()], output
    # under it, the first lines of the error summary the test harness uploaded
    lines = [line.strip() for line in output.splitlines()]
    unexpected = [line for line in lines if line.startswith("TEST-UNEXPECTED-FAIL | mochitest/")]
    assert len(unexpected) == 1, output
    assert unexpected[0].endswith("| assertion failed: got false, expected true")
    assert any(line.endswith(".js left a window open") for line in lines)


def test_a_failure_in_a_card_is_a_line_of_links() -> None:
    failure = Failure("test-a/opt-x", "exception", "https://tc/tasks/A", "https://tc/log", None)
    assert (
        failure.markdown()
        == "**test-a/opt-x** exception: [task](https://tc/tasks/A) · [log](https://tc/log)"
    )
    assert failure.plain() == "test-a/opt-x exception: https://tc/tasks/A log: https://tc/log"


async def test_pushes_lists_a_projects_pushes_newest_first_passing_over_holes(
    env: Embedded,
) -> None:
    chain = seed_chain(env.tc, 6, tasks=300, project="mozilla-central", actions=False)
    del env.tc.index.entries["gecko.v2.mozilla-central.pushlog-id.3.decision"]  # no decision
    output = await say(env, "pushes 4 on mozilla-central")
    lines = [line.strip() for line in output.splitlines()]
    assert lines[0].endswith("4 pushes of mozilla-central, newest first:"), output
    listed = [line.split()[0] for line in lines[1:5]]
    assert listed == ["#6", "#5", "#4", "#2"]
    assert chain.pushes[5].revision[:12] in lines[1]
    assert f"/tasks/groups/{chain.pushes[5].decision_task_id}" in lines[1]
    # Up to a push named by its revision; fewer than asked for when the pushlog begins.
    upto = await say(env, f"pushes 10 on mozilla-central@{chain.pushes[1].revision}")
    assert [line.strip().split()[0] for line in upto.splitlines()[1:]] == ["#2", "#1"]


async def test_pushes_without_pushlog_ids_have_no_order_to_tell(env: Embedded) -> None:
    unordered = seed_push(env.tc, tasks=300, seed=0, project="translations")  # pushlog id 0
    output = await say(env, f"pushes on translations@{unordered.revision}")
    assert "have no pushlog ids" in output
    assert "cannot tell which came before which" in output


async def test_push_overview_counts_states_failures_by_suite_and_what_was_added(
    env: Embedded,
) -> None:
    label, task_id = ran(env, "completed")
    ended_in_exception(env, task_id)
    await say(env, f"retrigger {label} --dry-run")
    output = await say(env, "push")
    lines = [line.strip() for line in output.splitlines()]
    queue = env.tc.queue
    decision = env.push.decision_task_id
    group = [t for t in queue.tasks.values() if t.definition.get("taskGroupId") == decision]
    failed = sum(t.state == "failed" for t in group)
    headline = f"taskbot> {env.push.project}@{env.push.revision[:12]}: {len(group)} tasks:"
    assert lines[0].startswith(headline), output
    assert f"{failed} failed" in lines[0]
    assert "1 exception" in lines[0]
    suites = next(line for line in lines if line.startswith("failures by suite:"))
    assert suite_of(label) in suites
    assert "added by taskbot: `r" in output
    assert f"retrigger {label} --dry-run" in output


def test_the_suite_of_a_label() -> None:
    assert suite_of("test-linux1804-64-qr/debug-mochitest-plain-3") == "mochitest-plain"
    assert suite_of("test-windows11-64-2009-qr/opt-xpcshell") == "xpcshell"
    assert suite_of("build-linux64/opt") == "build-linux64/opt"


class Reader(Adapter):
    """A place whose people may read (and triage), nothing more."""

    source = "chat"

    async def level_of(self, request: Request) -> Level:
        return Level.TRIAGE


async def test_a_tasks_own_project_decides_who_may_rerun_it(env: Embedded) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={
            project: ProjectSettings(project, allow_from=("sandbox",)),
            "sandbox": ProjectSettings("sandbox", permissions={"rerun": "read"}),
        },
    )
    env.bot.register(Reader())
    _, task_id = ran(env, "failed")
    out = io.StringIO()
    asked = Request("chat", "visitor", "sandbox-room", f"rerun {task_id}", project="sandbox",
                    direct=True)  # fmt: skip
    await env.bot.handle(asked, ConsoleReplier(out))
    assert "`rerun` needs write" in out.getvalue(), out.getvalue()
    assert len(env.tc.queue.tasks[task_id].status["runs"]) == 1


async def test_a_task_whose_project_cannot_be_told_is_not_rerun(env: Embedded) -> None:
    other = seed_push(env.tc, tasks=300, seed=9, project="try")
    decision = env.tc.queue.tasks[other.decision_task_id]
    for artifacts in decision.artifacts.values():
        artifacts.pop("public/parameters.yml", None)  # a decision task still uploading
    task_id = next(iter(other.push.label_to_taskid.values()))
    output = await say(env, f"rerun {task_id}", project=env.push.project)
    assert "the project of its push cannot be told" in output
    assert len(env.tc.queue.tasks[task_id].status["runs"]) == 1
    decision_itself = await say(env, f"rerun {other.decision_task_id}")
    assert "is a decision task" in decision_itself


async def test_retrigger_exception_leaves_jobs_run_again_since_and_cancelled_ones(
    env: Embedded,
) -> None:
    _, task_id = ran(env, "completed")
    ended_in_exception(env, task_id)
    first = await say(env, "retrigger exception")
    assert "finished: 1 ok" in first, first
    again = await say(env, "retrigger exception")  # the newest run of the job passed
    assert "No job ended in an exception" in again, again
    other, other_id = ran(env, "completed")
    queue = env.tc.queue
    queue.rerun(other_id)
    queue.cancel(other_id)  # cancelled: an exception, but no failure of the job's
    assert "No job ended in an exception" in await say(env, "retrigger exception")
    assert other not in await say(env, "retrigger failed --dry-run")


async def test_pushes_says_where_it_gave_up_after_a_long_gap(env: Embedded) -> None:
    seed_chain(env.tc, 30, tasks=200, project="mozilla-central", actions=False)
    for pushlog_id in range(5, 17):
        del env.tc.index.entries[f"gecko.v2.mozilla-central.pushlog-id.{pushlog_id}.decision"]
    output = await say(env, "pushes 50 on mozilla-central")
    listed = [line.split()[0] for line in (x.strip() for x in output.splitlines()[1:])]
    assert listed[:-1] == [f"#{n}" for n in range(30, 16, -1)]
    assert "stopped looking: pushlog ids 7 to 16 have no decision task indexed" in output


async def test_actions_lists_what_a_push_and_a_task_offer_from_a_real_actions_json(
    env: Embedded,
) -> None:
    real = reference_path("taskgraph", "gecko-autoland-actions.json").read_bytes()
    queue = env.tc.queue
    decision = queue.tasks[env.push.decision_task_id]
    run = max(decision.artifacts)
    kept = decision.artifacts[run]["public/actions.json"]
    decision.artifacts[run]["public/actions.json"] = replace(kept, content=real)
    push_level = await say(env, "actions")
    names = re.findall(r"`([a-z0-9-]+)`", push_level)
    assert names == [
        "add-new-jobs", "run-all-talos", "run-missing-tests", "cancel-all", "openh264",
        "retrigger-multiple",
    ], push_level  # fmt: skip
    assert "actions on TASKID" in push_level
    _, task_id = ran(env, "failed")
    queue.tasks[task_id].definition["tags"] = {
        "kind": "test", "retrigger": "true", "test-type": "mochitest",
        "worker-implementation": "docker-worker",
    }  # fmt: skip
    on_task = await say(env, f"actions on {task_id}")
    names = re.findall(r"`([a-z0-9-]+)`", on_task)
    assert names[0] == "retrigger-custom"
    assert names.count("retrigger") == 1  # the first of its name that applies
    assert {"confirm-failures", "backfill", "rerun", "cancel", "purge-cache"} <= set(names)
    assert "geckoprofile" not in names  # for talos and raptor only
    unknown = await say(env, f"actions on {slugid.nice()}")
    assert "There is no task" in unknown


async def test_an_outage_half_way_through_a_rerun_says_some_may_be_done(env: Embedded) -> None:
    failed = [
        t for t in env.push.push.label_to_taskid.values() if env.tc.queue.tasks[t].state == "failed"
    ]
    first, second = failed[:2]
    env.tc.faults = Faults(error_rate=1.0, only=f"/{second}")  # the Queue fails on the second
    output = await say(env, f"rerun {first} {second}")
    env.tc.faults = Faults()
    assert len(env.tc.queue.tasks[first].status["runs"]) == 2  # the first was rerun
    assert "some of its tasks may have been rerun already" in output, output
    assert "nothing new was scheduled" not in output
    assert "Traceback" not in output
