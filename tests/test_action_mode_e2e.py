"""Action mode end to end on the embedded local Taskcluster: the push's in-tree actions
create the jobs (their callbacks run as taskgraph's do), and the bot follows them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.action_mode import action_row
from bot.adapters.console import ConsoleReplier
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.localtc.auth import Client
from bot.localtc.queue import Artifact
from bot.service import Bot
from bot.store import RequestState, SqliteStore
from bot.tc.clients import TaskclusterSettings, make_clients
from tests.test_console_e2e import request_id, say


@contextlib.asynccontextmanager
async def action_mode(tmp_path: Path, worker_seconds: float) -> AsyncIterator[Embedded]:
    """The embedded bot with its project in action mode; tasks take ``worker_seconds``."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=worker_seconds) as running:
        project = running.push.project
        running.bot.settings = replace(
            running.bot.settings,
            poll_interval=0.05,
            projects={project: ProjectSettings(project, mode="action")},
        )
        yield running
    await store.close()


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with action_mode(tmp_path, 0.05) as running:
        yield running


def new_tests(env: Embedded, count: int) -> list[str]:
    ran = env.push.push.label_to_taskid
    return [x for x in env.push.push.graph if x.startswith("test-") and x not in ran][:count]


def fired(env: Embedded) -> list[dict]:
    return [payload for hook in env.tc.hooks.hooks.values() for payload in hook.fired]


def replace_artifact(env: Embedded, name: str, content: Any) -> None:
    """The decision task's artifact ``name`` holds ``content`` from now on (as JSON)."""
    decision = env.tc.queue.tasks[env.push.decision_task_id]
    decision.artifacts[len(decision.status["runs"]) - 1][name] = Artifact(
        name, json.dumps(content).encode(), "application/json", decision.definition["expires"]
    )


def replace_actions(env: Embedded, actions: dict[str, Any]) -> None:
    replace_artifact(env, "public/actions.json", actions)


async def test_add_new_jobs_is_followed_to_the_tasks_it_created(env: Embedded) -> None:
    labels = new_tests(env, 2)
    output = await say(env, "schedule " + " ".join(labels) + " x2")
    rid = request_id(output)
    assert "via the push's add-new-jobs action" in output, output
    (payload,) = fired(env)
    assert payload["user"]["input"] == {"tasks": labels, "times": 2}  # xN is its `times`
    action_task = payload and next(
        t
        for t, r in env.tc.queue.tasks.items()
        if r.definition["tags"].get("kind") == "action-callback"
    )
    assert "created" in output, output
    assert "finished: " in output, output
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == RequestState.FINISHED
    plan = await env.store.plan(rid)
    requested = Counter(t.label for t in plan if t.requested)
    assert requested == dict.fromkeys(labels, 2)
    for task in plan:  # the action's own tasks, not ones the bot made up
        definition = env.tc.queue.tasks[task.task_id].definition
        assert definition["extra"]["parent"] == action_task
        assert f"{env.tc.root_url}/tasks/{task.task_id}" in output or not task.requested
    assert "Traceback" not in output


async def test_a_retrigger_uses_the_push_retrigger_multiple_action(env: Embedded) -> None:
    label = next(x for x in env.push.push.label_to_taskid if x.startswith("test-"))
    output = await say(env, f"retrigger {label} x3")
    assert "via the push's retrigger-multiple action" in output, output
    (payload,) = fired(env)
    assert payload["decision"]["action"]["cb_name"] == "retrigger-multiple"
    assert payload["user"]["input"] == {"requests": [{"tasks": [label], "times": 3}]}
    assert "created 3 tasks" in output, output  # its graph entry allows retriggers: copies
    assert "finished: 3 ok" in output, output


async def test_a_hook_the_decision_task_was_not_granted_is_refused(env: Embedded) -> None:
    """A try push can edit its actions.json to point at any hook: the bot triggers only a
    hook its decision task was granted as an action."""
    queue = env.tc.queue
    decision = env.push.decision_task_id
    actions = json.loads(queue.artifact(decision, None, "public/actions.json").content)
    for action in actions["actions"]:
        action["hookGroupId"] = "project-releng"  # a hook of another project
    replace_actions(env, actions)
    before = len(queue.tasks)
    output = await say(env, "schedule " + new_tests(env, 1)[0])
    assert "was not granted" in output, output
    assert "in-tree:hook-action:project-releng/in-tree-action-3-generic/" in output
    assert not fired(env)
    assert len(queue.tasks) == before
    record_of = await env.store.request(request_id(output))
    assert record_of is not None
    assert record_of.state == RequestState.FAILED


async def test_a_later_schedule_uses_what_an_earlier_action_built(env: Embedded) -> None:
    """Labels an earlier action created are the push's (merged from the Index as taskgraph
    merges them): a later job depending on one uses the action's task, not the decision's."""
    test = new_tests(env, 1)[0]
    build = next(d for d in env.push.push.graph[test]["dependencies"].values() if "build" in d)
    output = await say(env, f"schedule {build}")
    assert "finished: " in output, output
    (rebuilt,) = [t.task_id for t in await env.store.plan(request_id(output)) if t.label == build]
    assert rebuilt != env.push.push.label_to_taskid[build]
    merged = await env.bot.decisions.merged_labels(env.push.decision_task_id, env.push.project)
    assert merged[build] == rebuilt
    output = await say(env, f"schedule {test}")
    assert "finished: " in output, output
    (created,) = [t for t in await env.store.plan(request_id(output)) if t.label == test]
    assert rebuilt in env.tc.queue.tasks[created.task_id].definition["dependencies"]


@pytest_asyncio.fixture
async def slow(tmp_path: Path) -> AsyncIterator[Embedded]:
    """Tasks (action tasks too) take a second: long enough to cancel one while it runs."""
    async with action_mode(tmp_path, 1.0) as running:
        yield running


async def test_cancel_goes_through_the_push_cancel_action(slow: Embedded) -> None:
    label = new_tests(slow, 1)[0]
    first = await say(slow, f"schedule {label}", wait=False)
    rid = request_id(first)
    refused = await say(slow, f"cancel {rid}", wait=False)
    assert "has not created its jobs yet" in refused, refused  # the action task still runs
    for _ in range(200):
        record = await slow.store.request(rid)
        assert record is not None
        if record.state == RequestState.SUBMITTED:
            break
        await asyncio.sleep(0.05)
    (task,) = await slow.store.plan(rid)
    output = await say(slow, f"cancel {rid}")
    assert f"Asked the push's cancel action to cancel 1 task of {rid}" in output, output
    (cancel,) = [p for p in fired(slow) if p["decision"]["action"]["cb_name"] == "cancel"]
    assert cancel["user"]["taskId"] == task.task_id
    # the cancel action task picked by the task's tags ({} matches any task) ran its
    # callback on that task (whether it beat the task's own end is the workers' race; the
    # callback itself is held to taskgraph's in test_localtc_actions)
    (action,) = [
        r
        for r in slow.tc.queue.tasks.values()
        if r.definition["tags"].get("kind") == "action-callback"
        and json.loads(r.definition["payload"]["env"]["ACTION_TASK_ID"]) == task.task_id
    ]
    assert await slow.bot.idle(30)
    for _ in range(100):
        if action.state == "completed":
            break
        await asyncio.sleep(0.05)
    assert action.state == "completed"
    assert slow.tc.queue.tasks[task.task_id].state in ("completed", "exception")


def a_build(env: Embedded) -> str:
    ran = env.push.push.label_to_taskid
    return next(x for x in ran if x.startswith("build-"))


async def test_a_job_that_allows_no_retrigger_is_rerun_when_it_failed(env: Embedded) -> None:
    """taskgraph's retrigger-multiple reruns (same task, a new run) a job whose graph entry
    does not allow retriggers, when it failed: the bot follows that run."""
    build = a_build(env)
    task = env.tc.queue.tasks[env.push.push.label_to_taskid[build]]
    task.status["state"] = task.status["runs"][-1]["state"] = "failed"  # as if it had failed
    output = await say(env, f"retrigger {build}")
    assert "created 0 tasks and ran 1 again" in output, output
    assert "finished: 1 ok" in output, output
    assert task.status["runs"][-1]["reasonCreated"] == "rerun"
    (planned,) = await env.store.plan(request_id(output))
    assert planned.task_id == task.task_id


async def test_a_retrigger_the_action_does_nothing_for_is_said_plainly(env: Embedded) -> None:
    build = a_build(env)  # completed: taskgraph neither copies nor reruns it
    output = await say(env, f"retrigger {build}")
    assert f"it did nothing for 1 job(s) (`{build}`)" in output, output
    assert "finished: 0 ok" not in output
    record = await env.store.request(request_id(output))
    assert record is not None
    assert record.state == RequestState.FAILED


async def test_an_action_task_that_fails_is_reported_with_its_link(env: Embedded) -> None:
    """The push's callback refuses (here: the push's graph lost the job the bot asked for,
    as when an action of another revision's code runs): the bot says so, with the link."""
    label = new_tests(env, 1)[0]
    await say(env, f"schedule {label} --dry-run")  # the bot has read the graph
    graph = {k: v for k, v in env.push.push.graph.items() if k != label}
    replace_artifact(env, "public/full-task-graph.json", graph)
    output = await say(env, f"schedule {label}")
    assert "the push's add-new-jobs action task ended failed" in output, output
    assert f"{env.tc.root_url}/tasks/" in output
    record = await env.store.request(request_id(output))
    assert record is not None
    assert record.state == RequestState.FAILED


async def test_a_restart_while_the_action_runs_carries_on_to_its_tasks(env: Embedded) -> None:
    """A replica that dies after triggering leaves the request `action_running`, its plan
    the action task: whoever resumes it follows that task to the jobs, and to the end."""

    labels = new_tests(env, 2)
    first = await say(env, "schedule " + " ".join(labels))
    rid = request_id(first)
    created = await env.store.plan(rid)
    action_task = next(
        t
        for t, r in env.tc.queue.tasks.items()
        if r.definition["tags"].get("kind") == "action-callback"
    )
    # back to where it stood when the replica died: triggered, not yet followed
    given = {"tasks": labels, "times": 1}
    await env.store.replace_plan(rid, [action_row("add-new-jobs", action_task, given)])
    await env.store.set_state(rid, RequestState.ACTION_RUNNING)
    out = io.StringIO()
    assert rid in await env.bot.resume(ConsoleReplier(out))
    assert await env.bot.idle(30)
    text = out.getvalue()
    assert "created 2 tasks" in text, text
    assert "finished: 2 ok" in text, text
    assert {t.task_id for t in await env.store.plan(rid)} == {t.task_id for t in created}
    # no second action: the one action task is all there is
    assert len(fired(env)) == 1


async def test_auto_mode_creates_directly_when_the_bot_may(env: Embedded) -> None:
    """The embedded bot's client has `*`: auto mode needs no action for it."""
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings, projects={project: ProjectSettings(project, mode="auto")}
    )
    output = await say(env, "schedule " + new_tests(env, 1)[0])
    assert "finished: 1 ok" in output, output
    assert "action" not in output
    assert not fired(env)


async def test_auto_mode_uses_the_push_action_for_what_the_bot_may_not_create(
    env: Embedded,
) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings, projects={project: ProjectSettings(project, mode="auto")}
    )
    scopes = [
        "queue:get-artifact:public/*",
        "queue:get-task:*",
        "queue:status:*",
        "queue:list-task-group:*",
        "index:find-task:*",
        "index:list-tasks:*",
        "hooks:trigger-hook:*",
        "auth:current-scopes",
        "auth:expand-scopes",
    ]
    token = "reader-token-" + "0" * 22
    env.tc.clients["project/taskbot-reader"] = Client(
        "project/taskbot-reader", token, tuple(scopes)
    )
    settings = TaskclusterSettings(env.tc.root_url, "project/taskbot-reader", token)
    env.bot.clients = make_clients(settings, env.bot.clients.session)
    output = await say(env, "schedule " + new_tests(env, 1)[0])
    assert "via the push's add-new-jobs action" in output, output
    assert "finished: 1 ok" in output, output
    assert len(fired(env)) == 1


async def test_a_hook_fired_but_not_recorded_is_said_never_retried(
    env: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails just after the hook fired: a brief fault is retried; a lasting one
    is said (with the action task's link), never answered with "try again"."""
    real = env.store.replace_plan
    failures = {"left": 1}

    async def flaky(request_id: str, tasks: Any, **kwargs: Any) -> None:
        if kwargs.get("state") == RequestState.ACTION_RUNNING and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the database went away")
        await real(request_id, tasks, **kwargs)

    monkeypatch.setattr(env.store, "replace_plan", flaky)
    first, second = new_tests(env, 2)
    output = await say(env, f"schedule {first}")
    assert "finished: 1 ok" in output, output  # one fault: retried, carried on
    failures["left"] = 100
    output = await say(env, f"schedule {second}")
    assert "was triggered" in output, output
    assert "Asking again would run the action a second time" in output
    assert "try again" not in output.lower()
    assert len(fired(env)) == 2  # one hook run per command, never more


async def test_a_request_cut_off_while_triggering_ends_saying_where_to_look(
    env: Embedded,
) -> None:
    """A replica that died mid-trigger leaves `triggering`: whether the hook fired is not
    known, so it is never triggered again; the request fails, naming the task group."""
    rid = request_id(await say(env, "schedule " + new_tests(env, 1)[0] + " --dry-run"))
    await env.store.set_state(rid, RequestState.TRIGGERING)
    out = io.StringIO()
    assert rid not in await env.bot.resume(ConsoleReplier(out))  # fresh: maybe in hand
    env.bot.lease_seconds = 0.0  # as if the lease had run out long ago
    await asyncio.sleep(0.01)
    assert rid in await env.bot.resume(ConsoleReplier(out))
    assert "cannot tell whether it ran" in out.getvalue(), out.getvalue()
    assert f"/tasks/groups/{env.push.decision_task_id}" in out.getvalue()
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == RequestState.FAILED
    assert not fired(env)


async def test_cancel_asked_twice_asks_the_push_once(slow: Embedded) -> None:
    label = new_tests(slow, 1)[0]
    rid = request_id(await say(slow, f"schedule {label}", wait=False))
    for _ in range(200):
        record = await slow.store.request(rid)
        assert record is not None
        if record.state == RequestState.SUBMITTED:
            break
        await asyncio.sleep(0.05)
    first = await say(slow, f"cancel {rid}", wait=False)
    again = await say(slow, f"cancel {rid}", wait=False)
    assert "Asked the push's cancel action" in first, first
    assert "was cancelled already" in again, again
    assert len([p for p in fired(slow) if p["decision"]["action"]["cb_name"] == "cancel"]) == 1


async def test_a_large_actions_json_is_read_whole_and_a_huge_one_refused(env: Embedded) -> None:
    queue = env.tc.queue
    actions = json.loads(
        queue.artifact(env.push.decision_task_id, None, "public/actions.json").content
    )
    for action in actions["actions"]:
        action["description"] = "d" * 300_000  # ~1.2 MB in all: read in many chunks
    replace_actions(env, actions)
    first, second = new_tests(env, 2)
    output = await say(env, f"schedule {first}")
    assert "finished: 1 ok" in output, output
    for action in actions["actions"]:
        action["description"] = "d" * 600_000  # over 2 MB in all
    replace_actions(env, actions)
    output = await say(env, f"schedule {second}")
    assert "larger than 2,097,152 bytes" in output, output
    assert len(fired(env)) == 1


async def test_a_hook_answer_lost_is_never_answered_with_try_again(
    env: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook ran, then the connection dropped before its answer: the bot cannot tell
    whether it ran, says where to look, and never invites a second run."""
    hooks = env.bot.clients.hooks
    real = hooks.triggerHook

    async def ran_then_lost(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise aiohttp.ServerDisconnectedError()

    monkeypatch.setattr(hooks, "triggerHook", ran_then_lost)
    output = await say(env, "schedule " + new_tests(env, 1)[0])
    assert "cannot tell whether it ran" in output, output
    assert f"/tasks/groups/{env.push.decision_task_id}" in output
    assert "try again" not in output.lower()
    assert len(fired(env)) == 1
    record = await env.store.request(request_id(output))
    assert record is not None
    assert record.state == RequestState.FAILED


async def test_two_cancels_at_once_ask_the_push_once(slow: Embedded) -> None:
    rid = request_id(await say(slow, "schedule " + " ".join(new_tests(slow, 2)), wait=False))
    for _ in range(200):
        record = await slow.store.request(rid)
        assert record is not None
        if record.state == RequestState.SUBMITTED:
            break
        await asyncio.sleep(0.05)
    answers = await asyncio.gather(
        say(slow, f"cancel {rid}", wait=False), say(slow, f"cancel {rid}", wait=False)
    )
    assert sum("Asked the push's cancel action" in a for a in answers) == 1, answers
    assert sum("was cancelled already" in a for a in answers) == 1, answers
    assert len([p for p in fired(slow) if p["decision"]["action"]["cb_name"] == "cancel"]) == 2


async def test_another_replica_leaves_a_request_being_triggered_alone(
    env: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook slower than the lease: the triggering replica keeps renewing its hold, so the
    other replica's sweep neither fails the request nor says it was cut off. (A lease of a
    second: renewed every third of it, a pause of the whole process, such as a full garbage
    collection late in a long test session, must pass 0.6 s to lose it.)"""
    env.bot.lease_seconds = 1.0
    other = Bot(env.bot.settings, env.store, env.bot.clients, instance="other", lease_seconds=1.0)
    hooks = env.bot.clients.hooks
    real = hooks.triggerHook

    async def slow_hook(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3.0)
        return await real(*args, **kwargs)

    monkeypatch.setattr(hooks, "triggerHook", slow_hook)
    asked = asyncio.create_task(say(env, "schedule " + new_tests(env, 1)[0]))
    out = io.StringIO()
    while not asked.done():
        await other.resume(ConsoleReplier(out))
        await asyncio.sleep(0.1)
    output = await asked
    assert "finished: 1 ok" in output, output
    assert "cannot tell whether it ran" not in out.getvalue() + output
    assert len(fired(env)) == 1
