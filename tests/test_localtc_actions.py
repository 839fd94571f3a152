"""Action tasks run their callbacks as taskgraph's do; the Queue's dependency rules hold."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from dataclasses import dataclass
from typing import Any

import jsone
import pytest
import taskcluster.aio as tc_aio
import taskgraph.actions.util as taskgraph_actions
import taskgraph.create as taskgraph_create
from taskcluster.exceptions import TaskclusterRestFailure
from taskgraph.optimize import strategies as _registered  # noqa: F401 - registers them
from taskgraph.optimize.base import registry
from taskgraph.taskgraph import TaskGraph

from bot.localtc.callbacks import action_request, is_action_task, run_action
from bot.localtc.errors import TaskclusterError
from bot.localtc.queue import UNRESOLVED, Artifact
from bot.localtc.seed import SeededPush, register_action_hooks, seed_push
from bot.localtc.server import LocalTaskcluster
from bot.localtc.worker import SimulatedWorker
from tests.tcfixtures import Running, local_tc, new_id, task_definition, when

__all__ = ["local_tc"]

CALLER = "mozilla-auth0/ad|Mozilla-LDAP|someone"
GRAPH_ARTIFACTS = ("public/task-graph.json", "public/label-to-taskid.json", "public/to-run.json")


@dataclass
class Pushed:
    """A seeded push whose actions.json hooks are registered, and ways to use them."""

    tc: LocalTaskcluster
    push: SeededPush
    actions: dict[str, Any]

    @property
    def decision(self) -> str:
        return self.push.decision_task_id

    def payload(self, name: str, input: Any, task_id: str | None = None) -> dict[str, Any]:
        """The hook payload Treeherder renders from the push's actions.json."""
        action = next(a for a in self.actions["actions"] if a["name"] == name)
        context = {"taskGroupId": self.decision, "taskId": task_id, "input": input}
        rendered: dict[str, Any] = jsone.render(action["hookPayload"], context)
        return rendered

    def hook_of(self, name: str) -> tuple[str, str]:
        action = next(a for a in self.actions["actions"] if a["name"] == name)
        return action["hookGroupId"], action["hookId"]

    def trigger(self, name: str, input: Any, task_id: str | None = None) -> str:
        """Fire the action's hook; the new action task's id."""
        answer = self.tc.hooks.trigger(
            *self.hook_of(name), self.payload(name, input, task_id), CALLER
        )
        return str(answer["taskId"])

    def labels(self) -> dict[str, str]:
        return dict(json.loads(self.artifact(self.decision, "public/label-to-taskid.json")))

    def artifact(self, task_id: str, name: str) -> bytes:
        return self.tc.queue.artifact(task_id, None, name).content

    def forget(self, *labels: str) -> None:
        """Drop labels from the decision's label-to-taskid (as if optimized away)."""
        record = self.tc.queue.tasks[self.decision]
        stored = record.artifacts[0]["public/label-to-taskid.json"]
        kept = {k: v for k, v in self.labels().items() if k not in labels}
        record.artifacts[0][stored.name] = Artifact(
            stored.name, json.dumps(kept).encode(), stored.content_type, stored.expires
        )

    def created_by(self, action_task_id: str) -> dict[str, dict[str, Any]]:
        """The tasks an action task created, by taskId."""
        return {
            task_id: record.definition
            for task_id, record in self.tc.queue.tasks.items()
            if record.definition["extra"].get("parent") == action_task_id
        }

    def test_labels(self, *, ran: bool) -> list[str]:
        existing = self.labels()
        return [
            label
            for label in self.push.push.graph
            if label.startswith("test-") and (label in existing) == ran
        ]


def register(tc: LocalTaskcluster, push: SeededPush) -> Pushed:
    register_action_hooks(tc, push)
    actions = json.loads(
        tc.queue.artifact(push.decision_task_id, None, "public/actions.json").content
    )
    return Pushed(tc, push, actions)


@pytest.fixture
def pushed() -> Pushed:
    tc = LocalTaskcluster()
    return register(tc, seed_push(tc, tasks=400, seed=3))


def graph_json(pushed: Pushed, task_id: str) -> dict[str, Any]:
    return dict(json.loads(pushed.artifact(task_id, "public/task-graph.json")))


def label_of(definition: dict[str, Any]) -> str:
    return str(definition["tags"].get("label") or definition["metadata"]["name"])


# --- taskgraph's own create_tasks, for a differential check ---------------------------------


def taskgraph_creates(
    monkeypatch: pytest.MonkeyPatch,
    pushed: Pushed,
    to_run: list[str],
    existing: dict[str, str],
    action_task_id: str,
) -> list[tuple[str, dict[str, Any]]]:
    """(label, definition) of every task taskgraph's create_tasks submits for one copy,
    with its index and VCS optimizations off (the stand-in looks neither up)."""
    submitted: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setenv("TASK_ID", action_task_id)
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "http://127.0.0.1")
    monkeypatch.setattr(taskgraph_actions, "write_artifact", lambda name, data: None)
    monkeypatch.setattr(
        taskgraph_create,
        "create_task",
        lambda session, task_id, label, task_def: submitted.append((task_id, label, task_def)),
    )
    never = dict.fromkeys(registry, registry["never"])
    optimize = functools.partial(taskgraph_actions.optimize_task_graph, strategy_override=never)
    monkeypatch.setattr(taskgraph_actions, "optimize_task_graph", optimize)
    _, full = TaskGraph.from_json(copy.deepcopy(pushed.push.push.graph))
    taskgraph_actions.create_tasks(
        {"trust-domain": "gecko"},
        to_run,
        full,
        existing,
        {"level": "3"},
        pushed.decision,
        "0",
    )
    ids = {task_id: label for task_id, label, _ in submitted}
    names = {
        **{task_id: label for label, task_id in existing.items()},
        **ids,
        action_task_id: "<action>",
        pushed.decision: "<decision>",
    }
    return [
        (label, {**task_def, "dependencies": [names[d] for d in task_def["dependencies"]]})
        for _, label, task_def in submitted
    ]


def shape(label: str, definition: dict[str, Any]) -> tuple[str, str, tuple[str, ...], str]:
    """What must agree with taskgraph: label, first dependency, dependency labels, parent."""
    dependencies = definition["dependencies"]
    return (label, dependencies[0], tuple(sorted(dependencies)), definition["extra"]["parent"])


# --- add-new-jobs ---------------------------------------------------------------------------


def test_add_new_jobs_makes_each_copy_with_the_dependencies_it_lacks(
    pushed: Pushed, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = pushed.test_labels(ran=False)[0]
    build = pushed.push.push.graph[label]["dependencies"]["build"]
    pushed.forget(build)
    existing = pushed.labels()
    action = pushed.trigger("add-new-jobs", {"tasks": [label], "times": 2})
    assert run_action(pushed.tc, action) == "completed"

    created = pushed.created_by(action)
    assert sorted(label_of(d) for d in created.values()) == sorted([label, label, build, build])
    for task_id, definition in created.items():
        assert definition["taskGroupId"] == pushed.decision
        assert definition["schedulerId"] == "gecko-level-3"
        assert definition["dependencies"][0] == action  # taskgraph's update_dependencies
        waits_for_build = label_of(definition) == label
        state = pushed.tc.queue.get(task_id).state
        assert state == ("unscheduled" if waits_for_build else "pending")  # action completed
    docker = existing[pushed.push.push.graph[label]["dependencies"]["docker-image"]]
    assert all(docker in d["dependencies"] for d in created.values() if label_of(d) == label)

    names = {task_id: label_of(d) for task_id, d in created.items()}
    names |= {v: k for k, v in existing.items()} | {action: "<action>"}
    names[pushed.decision] = "<decision>"
    ours = sorted(
        shape(label_of(d), {**d, "dependencies": [names[x] for x in d["dependencies"]]})
        for d in created.values()
    )
    theirs = taskgraph_creates(monkeypatch, pushed, [label], existing, action)
    expected = sorted(shape(lbl, d) for lbl, d in theirs) * 2  # each copy alike
    assert ours == sorted(expected)
    builds_used = {
        d for t in created.values() if label_of(t) == label for d in t["dependencies"]
    } & set(created)
    assert len(builds_used) == 2  # each copy waits for its own build, as in taskgraph

    graph = graph_json(pushed, action)
    assert set(graph) == set(created)
    assert {entry["label"] for entry in graph.values()} == {label, build}
    assert all(graph[t]["task"] == created[t] for t in graph)
    merged = json.loads(pushed.artifact(action, "public/label-to-taskid.json"))
    assert merged[label] in created
    assert merged[build] in created
    assert {k: v for k, v in merged.items() if k not in (label, build)} == existing
    assert json.loads(pushed.artifact(action, "public/to-run.json")) == [label]
    for suffix in ("-0", "-1"):  # taskgraph keeps each copy's files when there are several
        assert json.loads(pushed.artifact(action, f"public/to-run{suffix}.json")) == [label]


def test_the_action_task_is_indexed_under_both_namespaces(pushed: Pushed) -> None:
    label = pushed.test_labels(ran=False)[0]
    action = pushed.trigger("add-new-jobs", {"tasks": [label]})
    push = pushed.push
    namespaces = [
        f"gecko.v2.{push.project}.pushlog-id.3.actions",
        f"gecko.v2.{push.project}.revision.{push.revision}.actions",
    ]
    with pytest.raises(TaskclusterError):
        pushed.tc.index.find(f"{namespaces[0]}.{action}")  # not before it completes
    assert run_action(pushed.tc, action) == "completed"
    for namespace in namespaces:
        assert pushed.tc.index.find(f"{namespace}.{action}").task_id == action
        assert [e.task_id for e in pushed.tc.index.list_tasks(namespace)] == [action]


def test_a_second_action_reuses_what_the_first_created(pushed: Pushed) -> None:
    graph = pushed.push.push.graph
    first_label = pushed.test_labels(ran=False)[0]
    second_label = next(
        label
        for label in graph
        if label.startswith("test-")
        and label != first_label
        and graph[label]["dependencies"]["build"] == graph[first_label]["dependencies"]["build"]
    )
    build = pushed.push.push.graph[first_label]["dependencies"]["build"]
    pushed.forget(build)
    first = pushed.trigger("add-new-jobs", {"tasks": [first_label]})
    assert run_action(pushed.tc, first) == "completed"
    (new_build,) = [t for t, d in pushed.created_by(first).items() if label_of(d) == build]

    second = pushed.trigger("add-new-jobs", {"tasks": [second_label]})
    assert run_action(pushed.tc, second) == "completed"
    (created,) = pushed.created_by(second).values()  # only the test: the build is reused
    assert label_of(created) == second_label
    assert new_build in created["dependencies"]
    merged = json.loads(pushed.artifact(second, "public/label-to-taskid.json"))
    assert merged[build] == new_build


def test_an_unknown_label_fails_the_action_and_creates_nothing(pushed: Pushed) -> None:
    label = pushed.test_labels(ran=False)[0]
    action = pushed.trigger("add-new-jobs", {"tasks": [label, "test-nowhere/opt-nothing-1"]})
    before = set(pushed.tc.queue.tasks)
    assert run_action(pushed.tc, action) == "failed"
    assert set(pushed.tc.queue.tasks) == before
    log = pushed.artifact(action, "public/logs/live_backing.log").decode()
    assert "test-nowhere/opt-nothing-1 was not found in the task-graph" in log
    with pytest.raises(TaskclusterError):
        pushed.artifact(action, "public/label-to-taskid.json")
    assert pushed.tc.index.list_tasks(f"gecko.v2.{pushed.push.project}.pushlog-id.3.actions") == []


def test_an_unknown_callback_fails(pushed: Pushed) -> None:
    payload = pushed.payload("add-new-jobs", {"tasks": []})
    payload["decision"]["action"]["cb_name"] = "frobnicate"
    answer = pushed.tc.hooks.trigger(*pushed.hook_of("add-new-jobs"), payload, CALLER)
    assert run_action(pushed.tc, answer["taskId"]) == "failed"
    log = pushed.artifact(answer["taskId"], "public/logs/live_backing.log").decode()
    assert "Unknown callback: frobnicate" in log


# --- retrigger-multiple ---------------------------------------------------------------------


def test_retrigger_multiple_clones_retriggerable_jobs_and_reruns_the_others(
    pushed: Pushed,
) -> None:
    tests = pushed.test_labels(ran=True)[:2]
    build = pushed.push.push.graph[tests[0]]["dependencies"]["build"]
    pushed.forget(build)
    seed = pushed.trigger("add-new-jobs", {"tasks": [tests[0]]})
    assert run_action(pushed.tc, seed) == "completed"
    queue = pushed.tc.queue
    (failed_build,) = [t for t, d in pushed.created_by(seed).items() if label_of(d) == build]
    queue.resolve(failed_build, queue.claim(failed_build, "local", "w"), "failed")

    requests = [{"tasks": tests, "times": 2}, {"tasks": [build]}]
    action = pushed.trigger("retrigger-multiple", {"requests": requests})
    assert run_action(pushed.tc, action) == "completed"
    created = pushed.created_by(action)
    assert sorted(label_of(d) for d in created.values()) == sorted(tests * 2)
    assert queue.get(failed_build).status["runs"][-1]["reasonCreated"] == "rerun"
    for suffix in ("0-0", "0-1", "1-0"):
        assert pushed.artifact(action, f"public/task-graph-{suffix}.json")
    assert json.loads(pushed.artifact(action, "public/to-run.json")) == sorted(tests)


# --- cancel and cancel-all ------------------------------------------------------------------


def test_cancel_cancels_the_task_of_the_context(pushed: Pushed) -> None:
    label = pushed.test_labels(ran=False)[0]
    added = pushed.trigger("add-new-jobs", {"tasks": [label]})
    assert run_action(pushed.tc, added) == "completed"
    (target,) = pushed.created_by(added)
    action = pushed.trigger("cancel", {}, task_id=target)
    assert run_action(pushed.tc, action) == "completed"
    status = pushed.tc.queue.get(target).status
    assert (status["state"], status["runs"][-1]["reasonResolved"]) == ("exception", "canceled")
    group_action = pushed.trigger("cancel-all", {})
    without = action_request(pushed.tc.queue.get(group_action).definition, group_action, 0)
    assert without.target_task_id is None
    payload = pushed.payload("cancel-all", {})
    payload["decision"]["action"]["cb_name"] = "cancel"  # a cancel with no task to cancel
    no_target = pushed.tc.hooks.trigger(*pushed.hook_of("cancel-all"), payload, CALLER)
    assert run_action(pushed.tc, no_target["taskId"]) == "failed"


def test_cancel_all_cancels_the_group_but_not_itself(pushed: Pushed) -> None:
    labels = pushed.test_labels(ran=False)[:3]
    added = pushed.trigger("add-new-jobs", {"tasks": labels})
    assert run_action(pushed.tc, added) == "completed"
    queue = pushed.tc.queue
    other_action = pushed.trigger("add-new-jobs", {"tasks": labels[:1]})  # pending
    action = pushed.trigger("cancel-all", {})
    group = queue.groups[pushed.decision]["taskIds"]
    incomplete = [t for t in group if t != action and queue.get(t).state in UNRESOLVED]
    assert run_action(pushed.tc, action) == "completed"
    assert all(queue.get(t).state not in UNRESOLVED for t in group)
    assert queue.get(action).state == "completed"
    assert queue.get(other_action).status["runs"][-1]["reasonResolved"] == "canceled"
    assert all(queue.get(t).state == "exception" for t in pushed.created_by(added))
    log = pushed.artifact(action, "public/logs/live_backing.log").decode()
    assert f"Cancelling {len(incomplete)} tasks" in log


# --- end to end: the hook over HTTP, the worker running the action --------------------------


async def test_a_triggered_action_runs_on_the_worker_end_to_end(local_tc: Running) -> None:
    tc = local_tc.tc
    pushed = register(tc, seed_push(tc, tasks=300, seed=4))
    label = pushed.test_labels(ran=False)[0]
    hooks = tc_aio.Hooks(local_tc.options(), session=local_tc.session)
    answer = await hooks.triggerHook(
        *pushed.hook_of("add-new-jobs"), pushed.payload("add-new-jobs", {"tasks": [label]})
    )
    action = answer["taskId"]
    assert is_action_task(tc.queue.get(action).definition)
    worker = SimulatedWorker(tc.queue, seconds=0.01, tick=0.01, services=tc)
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    for _ in range(300):
        created = pushed.created_by(action)
        if created and all(tc.queue.get(t).state == "completed" for t in created):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await working
    assert tc.queue.get(action).state == "completed"
    assert [label_of(d) for d in pushed.created_by(action).values()] == [label]
    index = local_tc.index()
    namespace = f"gecko.v2.{pushed.push.project}.revision.{pushed.push.revision}.actions"
    assert (await index.findTask(f"{namespace}.{action}"))["taskId"] == action
    owner = tc.queue.get(action).definition["extra"]["action"]["context"]["clientId"]
    assert owner == tc.root_client.client_id


# --- the Queue's dependency rules -----------------------------------------------------------


async def test_a_dependency_expiring_before_the_deadline_is_refused(local_tc: Running) -> None:
    queue = local_tc.queue()
    short = new_id()
    await queue.createTask(short, task_definition(deadline=when(600), expires=when(1200)))
    dependent = new_id()
    with pytest.raises(TaskclusterRestFailure) as caught:
        await queue.createTask(
            dependent, task_definition(deadline=when(3600), dependencies=[short])
        )
    assert (caught.value.status_code, caught.value.body["code"]) == (400, "InputError")
    message = caught.value.body["message"]
    assert "`task.dependencies` references tasks that expires" in message
    assert f" * {short}," in message
    assert dependent not in local_tc.tc.queue.tasks
    fine = new_id()
    await queue.createTask(fine, task_definition(deadline=when(1100), dependencies=[short]))
    assert local_tc.tc.queue.tasks[fine].state == "unscheduled"


async def test_a_missing_dependency_is_refused_with_the_real_message(local_tc: Running) -> None:
    queue = local_tc.queue()
    missing, expiring = new_id(), new_id()
    await queue.createTask(expiring, task_definition(deadline=when(60), expires=when(120)))
    with pytest.raises(TaskclusterRestFailure) as caught:
        await queue.createTask(new_id(), task_definition(dependencies=[expiring, missing]))
    message = caught.value.body["message"]
    assert caught.value.body["code"] == "InputError"
    assert f"`task.dependencies` references non-existing tasks: \n * {missing}\n" in message
    assert "**must** exist" in message
    assert "expires" not in message.split("before the task is created.")[1]  # missing first


async def test_a_self_dependency_waits_for_schedule_task(local_tc: Running) -> None:
    queue = local_tc.queue()
    task_id = new_id()
    await queue.createTask(task_id, task_definition(dependencies=[task_id]))
    assert (await queue.status(task_id))["status"]["state"] == "unscheduled"
    await queue.scheduleTask(task_id)
    assert (await queue.status(task_id))["status"]["state"] == "pending"
