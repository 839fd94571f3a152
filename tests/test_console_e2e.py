"""End to end through the console adapter, on the embedded local Taskcluster and seeded push."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest_asyncio
import slugid

from bot.adapters.console import ConsoleAdapter, ConsoleReplier
from bot.core.access import Level
from bot.core.request import Request
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.localtc.seed import seed_push
from bot.localtc.server import Faults
from bot.store import RequestState, SqliteStore


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=0.05) as running:
        running.bot.settings = replace(running.bot.settings, poll_interval=0.05)
        yield running
    await store.close()


async def say(env: Embedded, text: str, *, actor: str = "sheriff", wait: bool = True) -> str:
    out = io.StringIO()
    await env.bot.handle(
        Request(source="console", actor=actor, place="console", text=text, direct=True),
        ConsoleReplier(out),
    )
    if wait:
        assert await env.bot.idle(30)
    return out.getvalue()


def request_id(output: str) -> str:
    found = re.search(r"\[(r[0-9a-f]+)\]", output)
    assert found, output
    return found[1]


def delivered(text: str, delivery_id: str) -> Request:
    """A command with a delivery id, which handling again is safe for (as a webhook's)."""
    return Request(
        source="console",
        actor="sheriff",
        place="console",
        text=text,
        direct=True,
        delivery_id=delivery_id,
        resumable=True,
    )


def a_test(env: Embedded, *, ran: bool) -> str:
    ran_labels = env.push.push.label_to_taskid
    return next(
        label
        for label in env.push.push.graph
        if label.startswith("test-") and (label in ran_labels) == ran
    )


async def test_schedule_reuses_what_ran_and_reports_until_finished(env: Embedded) -> None:
    label = a_test(env, ran=False)
    output = await say(env, f"schedule {label}")
    rid = request_id(output)
    assert "1 new task (1 requested, 0 dependencies)" in output
    assert "reused" in output
    assert f"{label}: {env.tc.root_url}/tasks/" in output
    assert f"[{rid}] finished: 1 ok" in output
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == "finished"
    (task,) = await env.store.plan(rid)
    assert task.state == "completed"
    assert env.tc.queue.tasks[task.task_id].definition["taskGroupId"] == env.push.decision_task_id


async def test_dry_run_creates_nothing(env: Embedded) -> None:
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {a_test(env, ran=False)} --dry-run")
    assert "(dry run: nothing was scheduled)" in output
    assert len(env.tc.queue.tasks) == before
    record = await env.store.request(request_id(output))
    assert record is not None
    assert record.state == "previewed"


async def test_the_headline_names_the_push_once_with_its_revision(env: Embedded) -> None:
    push = env.push
    label = a_test(env, ran=False)
    latest = await say(env, f"schedule {label} --dry-run")
    headline = latest.splitlines()[0]
    where = f"{push.project}@{push.revision[:12]} (latest)"
    assert f"] schedule {label} --dry-run on {where}:" in headline
    record = await env.store.request(request_id(latest))
    assert record is not None
    assert record.revision == push.revision  # `latest` is recorded as the push it meant
    pinned = await say(env, f"schedule {label} on {push.project}@{push.revision} --dry-run")
    headline = pinned.splitlines()[0]
    assert headline.count(" on ") == 1, headline
    assert f"on {push.project}@{push.revision[:12]}:" in headline
    record = await env.store.request(request_id(pinned))
    assert record is not None
    assert record.command == f"schedule {label} on {push.project}@{push.revision} --dry-run"


async def test_above_the_threshold_it_waits_for_confirm(env: Embedded) -> None:
    env.bot.settings = replace(env.bot.settings, confirm_threshold=2)
    output = await say(env, "schedule 'xpcshell' x3", wait=False)
    rid = request_id(output)
    assert f"`confirm {rid}`" in output
    before = len(env.tc.queue.tasks)
    assert "Only sheriff" in await say(env, f"confirm {rid}", actor="someone-else", wait=False)
    assert len(env.tc.queue.tasks) == before
    confirmed = await say(env, f"confirm {rid}")
    assert f"[{rid}] finished" in confirmed
    assert len(env.tc.queue.tasks) > before
    assert "not waiting for confirmation" in await say(env, f"confirm {rid}", wait=False)


async def test_retrigger_failed(env: Embedded) -> None:
    assert env.push.failed
    output = await say(env, "retrigger failed")
    rid = request_id(output)
    planned = {t.label for t in await env.store.plan(rid)}
    assert set(env.push.failed) <= planned
    assert "finished" in output


async def test_cancel_a_request(env: Embedded) -> None:
    env.bot.settings = replace(env.bot.settings, confirm_threshold=1000)
    env.bot.background.clear()
    output = await say(env, f"schedule {a_test(env, ran=False)} x2", wait=False)
    rid = request_id(output)
    cancelled = await say(env, f"cancel {rid}", wait=False)
    assert "Cancelled" in cancelled
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == "cancelled"


async def test_a_cancel_while_the_tasks_are_being_created_cancels_them_all(env: Embedded) -> None:
    """The Queue is slow: the cancel comes while the request is still submitting. Every task
    it created ends cancelled, the request stays cancelled (never "submitted" over it)."""
    env.bot.settings = replace(env.bot.settings, confirm_threshold=1000)
    env.tc.faults = Faults(delay_ms=400, only="/api/queue/v1/task/")
    env.worker.seconds = 60.0  # nothing ends before it could be cancelled
    out = io.StringIO()
    asked = Request(
        source="console",
        actor="sheriff",
        place="console",
        text=f"schedule {a_test(env, ran=False)} x3",
        direct=True,
    )
    scheduling = asyncio.create_task(env.bot.handle(asked, ConsoleReplier(out)))
    for _ in range(200):
        submitting = await env.store.requests_in(RequestState.SUBMITTING)
        if submitting:
            break
        await asyncio.sleep(0.02)
    (record,) = submitting
    cancelled = await say(env, f"cancel {record.id}", wait=False)
    assert "Cancelled" in cancelled or "cancelled" in cancelled, cancelled
    await scheduling
    env.tc.faults = Faults()
    assert await env.bot.idle(30)
    record = await env.store.request(record.id)
    assert record is not None
    assert record.state == RequestState.CANCELLED
    mine = [
        t
        for t in env.tc.queue.tasks.values()
        if (t.definition.get("extra") or {}).get("taskbot", {}).get("request") == record.id
    ]
    assert mine
    assert all(t.state == "exception" for t in mine), [t.state for t in mine]
    assert f"[{record.id}] was cancelled while its tasks were being created" in out.getvalue()


async def test_status_of_a_request_and_of_mine(env: Embedded) -> None:
    rid = request_id(await say(env, f"schedule {a_test(env, ran=False)}"))
    assert f"[{rid}]" in await say(env, f"status {rid}", wait=False)
    assert f"[{rid}]" in await say(env, "status", wait=False)
    assert "No requests yet." in await say(env, "status", actor="newcomer", wait=False)
    assert "There is no request r0000" in await say(env, "status r0000", wait=False)


async def test_unknown_job_gets_suggestions(env: Embedded) -> None:
    output = await say(env, "schedule mochitest-browser-chrom-3", wait=False)
    assert "matches no job" in output
    assert "Did you mean" in output


async def test_ambiguous_name_gets_a_shortlist(env: Embedded) -> None:
    output = await say(env, "schedule mochitest-plain", wait=False)
    assert "name one, add `for PLATFORM`" in output
    assert "  1. test-" in output


async def test_try_syntax(env: Embedded) -> None:
    # (It asked for `-u xpcshell-1`, which this push has no debug linux64 job of: only the
    # build was scheduled, and the test passed; now that says so and schedules nothing.)
    output = await say(env, "try: -b d -p linux64 -u firefox-ui-functional -t none")
    rid = request_id(output)
    planned = await env.store.plan(rid)
    assert planned
    labels = {t.label for t in planned}
    # Gecko's rules select the build of the platform too, and its tests
    assert "build-linux64/debug" in labels
    tests = labels - {"build-linux64/debug"}
    assert tests
    assert all("/debug-firefox-ui-functional" in label for label in tests)


async def test_unknown_revision_is_explained(env: Embedded) -> None:
    output = await say(env, "schedule xpcshell on autoland@" + "0" * 40, wait=False)
    assert "no decision task found for autoland@" in output


async def test_help_and_parse_errors_never_show_tracebacks(env: Embedded) -> None:
    output = await say(env, "help try\nshedule x\nschedule x x1000", wait=False)
    assert "try: -b o|d|do" in output
    assert (
        "\n         Schedules what Gecko's try option syntax selects" in output
    )  # no stray indent
    assert "Try: schedule x" in output
    assert "at most 20" in output
    assert "Traceback" not in output


async def test_treeherder_link_when_configured(env: Embedded) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={
            project: ProjectSettings(project, treeherder_url="https://treeherder.example.com/")
        },
    )
    label = a_test(env, ran=False)
    output = await say(env, f"schedule {label} on {project}@{env.push.revision}")
    # the push's jobs filtered to the one asked for (Treeherder's filter box)
    assert (
        f"treeherder: https://treeherder.example.com/jobs?repo={project}&revision={env.push.revision}"
        f"&searchStr={quote(label, safe='')}"
    ) in output


class ReadOnlyConsole(ConsoleAdapter):
    """A console whose people may only read."""

    async def level_of(self, request: Request) -> Level:
        return Level.READ

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        return f"{request.actor} has read access to this project; `{verb}` needs write."


async def test_a_denial_says_why_and_is_audited(env: Embedded) -> None:
    env.bot.register(ReadOnlyConsole())
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {a_test(env, ran=False)}", actor="visitor", wait=False)
    assert output.startswith("taskbot> You may not `schedule` here: visitor has read access")
    assert len(env.tc.queue.tasks) == before
    assert "No requests yet." in await say(env, "status", actor="visitor", wait=False)
    (entry,) = [e for e in await env.store.audit_log() if e["action"] == "denied"]
    assert (entry["actor"], entry["detail"]["verb"]) == ("visitor", "schedule")


async def test_a_redelivered_message_schedules_nothing_new(env: Embedded) -> None:
    text = f"schedule {a_test(env, ran=False)}"
    request = Request(
        source="console", actor="me", place="console", text=text, delivery_id="d-1", direct=True
    )
    out = io.StringIO()
    assert await env.bot.handle(request, ConsoleReplier(out)) == 1
    assert await env.bot.idle(30)
    before = len(env.tc.queue.tasks)
    assert await env.bot.handle(request, ConsoleReplier(out)) == 0
    assert len(env.tc.queue.tasks) == before


async def test_project_caps_override_the_defaults(env: Embedded) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={project: ProjectSettings(project, max_new_tasks=1)},
    )
    output = await say(env, "schedule 'xpcshell' x2", wait=False)
    assert "one request may create at most 1" in output


async def test_taskcluster_down_gets_a_clear_answer(env: Embedded) -> None:
    env.bot.decisions.attempts = 2
    env.tc.faults = Faults(error_rate=1.0, only="/api/index/")
    output = await say(env, f"schedule {a_test(env, ran=False)}", wait=False)
    assert "Taskcluster did not answer" in output
    assert "HTTP 500" in output
    assert "nothing new was scheduled" in output
    assert "Traceback" not in output


async def test_a_cancel_cut_short_by_taskcluster_says_it_may_be_partly_done(
    env: Embedded,
) -> None:
    rid = request_id(await say(env, f"schedule {a_test(env, ran=False)}"))
    env.tc.faults = Faults(error_rate=1.0, only="/api/queue/")
    output = await say(env, f"cancel {rid}", wait=False)
    assert "Taskcluster did not answer" in output, output
    assert "it may have been done in part only" in output
    assert "nothing new was scheduled" not in output


async def test_a_source_without_a_permission_check_is_refused(env: Embedded) -> None:
    out = io.StringIO()
    request = Request(source="irc", actor="nick", place="#sheriffs", text="taskbot: jobs x")
    await env.bot.handle(request, ConsoleReplier(out))
    assert out.getvalue().startswith(
        "taskbot> You may not `jobs` here: commands from irc are not accepted"
    )


async def test_a_requested_build_is_listed_with_its_requested_test(env: Embedded) -> None:
    """The card lists what was asked for, even a job that another asked-for job needs (a
    requested job is always created anew, so the test depends on the new build)."""
    test = a_test(env, ran=False)
    build = env.push.push.graph[test]["dependencies"]["build"]
    output = await say(env, f"schedule {test} {build}")
    assert "2 new tasks (2 requested, 0 dependencies)" in output
    assert f"  {test}: " in output
    assert f"  {build}: " in output


async def test_a_request_that_could_not_be_planned_fails_and_is_planned_again_on_retry(
    env: Embedded,
) -> None:
    label = a_test(env, ran=False)
    store = env.store
    real_save_plan = store.save_plan
    calls = 0

    async def save_plan_once_broken(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("the disk is full")
        await real_save_plan(*args, **kwargs)

    store.save_plan = save_plan_once_broken  # type: ignore[method-assign]
    request = delivered(f"schedule {label}", "d-1")
    out = io.StringIO()
    await env.bot.handle(request, ConsoleReplier(out))
    assert f"Something went wrong on my side while handling `schedule {label}`" in out.getvalue()
    assert "the disk is full" not in out.getvalue()  # the details go to the log only
    (record,) = await store.recent_requests()
    assert (record.state, record.error) == ("failed", "not planned: the disk is full")
    # The same delivery again (a retry) plans it anew under the same id, and submits it.
    again = io.StringIO()
    await env.bot.handle(request, ConsoleReplier(again))
    assert await env.bot.idle(30)
    assert f"[{record.id}] finished: 1 ok" in again.getvalue(), again.getvalue()
    (record,) = await store.recent_requests()
    assert record.state == "finished"


async def test_a_request_whose_first_attempt_died_after_planning_is_carried_on_in_its_group(
    env: Embedded,
) -> None:
    """The first attempt stops between saving the plan and moving on (its replica died):
    the retry carries on with the saved plan, links and follows the push's task group."""
    label = a_test(env, ran=False)
    store = env.store
    real_set_state = store.set_state
    died = False

    async def dies_before_submitting(request_id: str, state: str, **kwargs: Any) -> None:
        nonlocal died
        if state == "submitting" and not died:
            died = True
            raise ConnectionResetError("the replica went away")
        await real_set_state(request_id, state, **kwargs)

    store.set_state = dies_before_submitting  # type: ignore[method-assign]
    request = delivered(f"schedule {label}", "d-2")
    await env.bot.handle(request, ConsoleReplier(io.StringIO()))
    (record,) = await store.recent_requests()
    assert record.state == "received"
    assert await store.plan(record.id)
    assert record.decision_task_id == env.push.decision_task_id
    again = io.StringIO()
    await env.bot.handle(request, ConsoleReplier(again))
    assert await env.bot.idle(30)
    group = f"task group: {env.tc.root_url}/tasks/groups/{env.push.decision_task_id}\n"
    assert group in again.getvalue(), again.getvalue()
    assert f"[{record.id}] finished: 1 ok" in again.getvalue()
    assert (
        len([t for t in env.tc.queue.tasks.values() if t.definition["metadata"]["name"] == label])
        == 1
    )


async def test_retrigger_by_task_id_of_this_push_of_another_or_of_none(env: Embedded) -> None:
    ran = env.push.push.label_to_taskid
    label, task_id = next((x, t) for x, t in ran.items() if x.startswith("test-"))
    output = await say(env, f"retrigger {task_id}")
    assert f"] retrigger {task_id} on {env.push.project}@" in output
    assert f"{label}: {env.tc.root_url}/tasks/" in output  # the job it ran, as a new task

    other = seed_push(env.tc, tasks=200, seed=91, project="mozilla-central")
    other_label, other_task = next(iter(other.push.label_to_taskid.items()))
    before = len(env.tc.queue.tasks)
    output = await say(env, f"retrigger {other_task}")
    assert output == (
        f"taskbot> Task `{other_task}` ({other_label}) is not a job of "
        f"{env.push.project}@{env.push.revision[:12]} (latest): it ran in task group "
        f"`{other.decision_task_id}`. Add `on REVISION` for the push it belongs to.\n"
    )
    missing = slugid.nice()
    output = await say(env, f"retrigger {missing}")
    assert output == (
        f"taskbot> There is no task `{missing}` in the Queue (tasks expire, in a year by "
        "default).\n"
    )
    assert len(env.tc.queue.tasks) == before


class CardReplier:
    """A place where the bot edits its replies in place (as on GitHub): every body each
    message had, in order."""

    edits_in_place = True

    def __init__(self) -> None:
        self.bodies: dict[str, list[str]] = {}

    async def post(self, text: str) -> str:
        reference = str(len(self.bodies) + 1)
        self.bodies[reference] = [text]
        return reference

    async def edit(self, reference: str, text: str) -> None:
        self.bodies[reference].append(text)

    async def react(self, reaction: str) -> None:
        return None


async def test_a_repeated_command_never_sets_a_followed_card_back(env: Embedded) -> None:
    """The same delivery again (a redelivery, a client's retry) while this process follows
    the request: the card keeps its progress and ends finished; nothing is posted twice."""
    label = a_test(env, ran=False)
    request = delivered(f"schedule {label}", "d-3")
    replier = CardReplier()
    await env.bot.handle(request, replier)
    await asyncio.sleep(0.01)  # its tracker is following it
    await env.bot.handle(request, replier)
    assert await env.bot.idle(30)
    (card,) = [bodies for bodies in replier.bodies.values() if "task group:" in bodies[0]]
    assert "**finished: 1 ok**" in card[-1]
    assert all("| job | state |" in body for body in card[1:]), card  # progress only
