"""Action callbacks that action tasks run, as taskgraph's do: add-new-jobs, retrigger, cancel,
confirm-failures and backfill.

An action task (made by an in-tree action hook) names its callback and input in its
``payload.env`` (``ACTION_CALLBACK``, ``ACTION_INPUT``, ``ACTION_TASK_GROUP_ID``,
``ACTION_TASK_ID``). Running it does what ``taskgraph action-callback`` does:

* the push is the decision task's (found in the Index by its parameters, else the task
  group), its ``full-task-graph.json``, and its ``label-to-taskid.json`` merged with those of
  the completed action tasks indexed under ``<trust-domain>.v2.<project>.pushlog-id.<id>
  .actions`` and ``...revision.<head_rev>.actions``;
* each copy (``create_tasks`` call) creates the requested labels and every dependency the
  merged map cannot reuse, with ``extra.parent`` and a dependency on the action task, in
  the decision's group; the action uploads ``public/task-graph.json``,
  ``public/label-to-taskid.json`` and ``public/to-run.json`` (suffixed per copy too when
  there are several) and completes, so the Index lists it for the next action;
* any error fails the task (taskgraph exits 1); the reason is in
  ``public/logs/live_backing.log``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import yaml

from bot.graph import Materializer, TaskGraphIndex, plan
from bot.graph.materialize import task_label
from bot.localtc.errors import TaskclusterError
from bot.localtc.queue import UNRESOLVED, Artifact
from bot.localtc.server import LocalTaskcluster

ACTION_ENV = ("ACTION_CALLBACK", "ACTION_INPUT", "ACTION_TASK_GROUP_ID", "ACTION_TASK_ID")
ACTION_NAMESPACES = (
    "{trust_domain}.v2.{project}.pushlog-id.{pushlog_id}.actions",
    "{trust_domain}.v2.{project}.revision.{head_rev}.actions",
)
RERUN_STATES = ("exception", "failed")
LOG = "public/logs/live_backing.log"
JSON = "application/json"


class ActionFailedError(Exception):
    """The callback cannot do what it was asked; the action task fails with this reason."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What one run of an action task is asked to do, read from its environment."""

    task_id: str  # the action task itself (taskgraph's $TASK_ID)
    run_id: int
    callback: str
    input: Any
    task_group_id: str
    target_task_id: str | None


@dataclass
class Push:
    """The decision task's push as an action callback sees it."""

    decision_task_id: str
    graph: dict[str, Any]
    index: TaskGraphIndex
    label_to_taskid: dict[str, str]
    parameters: dict[str, Any]
    trust_domain: str

    @property
    def scheduler_id(self) -> str:
        return f"{self.trust_domain}-level-{self.parameters['level']}"


@dataclass
class Outputs:
    """The graph artifacts of one ``create_tasks`` call (a copy) or of all of them."""

    task_graph: dict[str, Any] = field(default_factory=dict)
    label_to_taskid: dict[str, str] = field(default_factory=dict)
    to_run: list[str] = field(default_factory=list)

    def documents(self, suffix: str = "") -> dict[str, bytes]:
        return {
            f"public/task-graph{suffix}.json": json.dumps(self.task_graph).encode(),
            f"public/label-to-taskid{suffix}.json": json.dumps(self.label_to_taskid).encode(),
            f"public/to-run{suffix}.json": json.dumps(self.to_run).encode(),
        }


@dataclass
class Run:
    """One run of a callback: the request, the service, the log and what it made."""

    tc: LocalTaskcluster
    request: ActionRequest
    log: list[str] = field(default_factory=list)
    copies: dict[str, Outputs] = field(default_factory=dict)  # by suffix
    keep_labels: bool = True  # False: its tasks are on other pushes; only task-graph.json


Callback = Callable[[Run], None]


# --- reading the action task ----------------------------------------------------------------


def is_action_task(definition: dict[str, Any]) -> bool:
    """Whether a task definition is an action task (its env names a callback)."""
    payload = definition.get("payload")
    env = payload.get("env") if isinstance(payload, dict) else None
    extra = definition.get("extra")
    return (
        isinstance(env, dict)
        and all(isinstance(env.get(name), str) for name in ACTION_ENV)
        and isinstance(extra, dict)
        and "action" in extra
    )


def action_request(definition: dict[str, Any], task_id: str, run_id: int) -> ActionRequest:
    """The callback, input, group and target task an action task's environment gives."""
    # the action task's environment (its payload's), not the process's
    task_env = definition["payload"]["env"]
    target = json.loads(task_env["ACTION_TASK_ID"])
    return ActionRequest(
        task_id=task_id,
        run_id=run_id,
        callback=task_env["ACTION_CALLBACK"],
        input=json.loads(task_env["ACTION_INPUT"]),
        task_group_id=task_env["ACTION_TASK_GROUP_ID"],
        target_task_id=target if isinstance(target, str) else None,
    )


# --- the push: fetch_graph_and_labels -------------------------------------------------------


def _artifact(tc: LocalTaskcluster, task_id: str, name: str) -> bytes:
    return tc.queue.artifact(task_id, None, name).content


def _parameters(tc: LocalTaskcluster, task_group_id: str) -> dict[str, Any]:
    loaded = yaml.safe_load(_artifact(tc, task_group_id, "public/parameters.yml"))
    if not isinstance(loaded, dict):
        raise ActionFailedError(f"the parameters.yml of {task_group_id} is not a mapping")
    return loaded


def _trust_domain(tc: LocalTaskcluster, parameters: dict[str, Any], task_group_id: str) -> str:
    """The parameters' trust domain, else the one in the group's ``<domain>-level-<n>``."""
    given = parameters.get("trust_domain")
    if isinstance(given, str) and given:
        return given
    scheduler = str(tc.queue.get(task_group_id).definition["schedulerId"])
    return scheduler.rsplit("-level-", 1)[0]


def _decision_task(tc: LocalTaskcluster, push: dict[str, Any], task_group_id: str) -> str:
    """taskgraph's find_decision_task: the Index path for the push, else the task group."""
    if push.get("repository_type", "hg") == "git":
        path = "{trust_domain}.v2.{project}.revision.{head_rev}.taskgraph.decision"
    else:
        path = "{trust_domain}.v2.{project}.pushlog-id.{pushlog_id}.decision"
    try:
        return tc.index.find(path.format(**push)).task_id
    except (TaskclusterError, KeyError):
        return task_group_id


def action_tasks(tc: LocalTaskcluster, values: dict[str, Any]) -> list[str]:
    """The action tasks indexed for a push (both namespaces), oldest expiry first."""
    entries = [
        entry
        for namespace in ACTION_NAMESPACES
        for entry in tc.index.list_tasks(namespace.format(**values))
    ]
    entries.sort(key=lambda entry: entry.expires)
    return list(dict.fromkeys(entry.task_id for entry in entries))


def merged_label_to_taskid(
    tc: LocalTaskcluster, decision_task_id: str, values: dict[str, Any]
) -> dict[str, str]:
    """The decision's label-to-taskid updated by every indexed action task's own."""
    merged: dict[str, str] = json.loads(
        _artifact(tc, decision_task_id, "public/label-to-taskid.json")
    )
    for task_id in action_tasks(tc, values):
        try:
            merged.update(json.loads(_artifact(tc, task_id, "public/label-to-taskid.json")))
        except TaskclusterError:
            continue  # an action that created nothing (cancel) has none
    return merged


def load_push(tc: LocalTaskcluster, task_group_id: str) -> Push:
    """The push an action on ``task_group_id`` acts on."""
    parameters = _parameters(tc, task_group_id)
    trust_domain = _trust_domain(tc, parameters, task_group_id)
    values = {**parameters, "trust_domain": trust_domain}
    decision = _decision_task(tc, values, task_group_id)
    graph_bytes = _artifact(tc, decision, "public/full-task-graph.json")
    return Push(
        decision_task_id=decision,
        graph=msgspec.json.decode(graph_bytes),
        index=TaskGraphIndex(graph_bytes),
        label_to_taskid=merged_label_to_taskid(tc, decision, values),
        parameters=parameters,
        trust_domain=trust_domain,
    )


# --- create_tasks ---------------------------------------------------------------------------


def _with_action_dependency(definition: dict[str, Any], action_task_id: str, own: int) -> None:
    """Add the action task as a dependency where taskgraph's update_dependencies puts it:
    after the task's own dependencies, before those of the graph."""
    listed = definition["dependencies"]
    definition["dependencies"] = list(dict.fromkeys([*listed[:own], action_task_id, *listed[own:]]))


def _graph_entry(
    push: Push, ids: dict[str, str], label: str, task_id: str, definition: dict[str, Any]
) -> Any:
    """The task as task-graph.json has it: the graph's entry with taskIds filled in."""
    entry = dict(push.graph[label])
    entry["dependencies"] = {
        edge: ids[dependency] for edge, dependency in push.index.entry(label).dependencies.items()
    }
    entry["task"] = definition
    entry["task_id"] = task_id
    return entry


def create_tasks(run: Run, push: Push, to_run: Iterable[str], suffix: str) -> Outputs:
    """One ``create_tasks`` call: ``to_run`` fresh, plus what the merged map cannot reuse."""
    requested = sorted(set(to_run))
    request = run.request
    planned = plan(
        push.index,
        requested,
        push.label_to_taskid,
        request_id=f"action/{request.task_id}/{request.run_id}/{suffix}",
    )
    materializer = Materializer(
        push.index,
        decision_task_id=push.decision_task_id,
        scheduler_id=push.scheduler_id,
        root_url=run.tc.root_url or "http://127.0.0.1",
        parent_task_id=request.task_id,
    )
    labels = {**push.label_to_taskid, **planned.create}
    outputs = Outputs(label_to_taskid=labels, to_run=requested)
    queue = run.tc.queue
    for new in materializer.definitions(planned, queue.now()):
        own = len(push.index.body(new.label).get("dependencies", []))
        _with_action_dependency(new.definition, request.task_id, own)
        task = queue.check_definition(new.task_id, new.definition)
        queue.create(new.task_id, task)
        run.log.append(f"Creating task with taskId {new.task_id} for {new.label}")
        outputs.task_graph[new.task_id] = _graph_entry(push, labels, new.label, new.task_id, task)
    run.copies[suffix] = outputs
    return outputs


def _combined(run: Run) -> Outputs:
    """combine_task_graph_files: every copy's artifacts in one."""
    combined = Outputs()
    to_run: set[str] = set()
    for outputs in run.copies.values():
        combined.task_graph.update(outputs.task_graph)
        combined.label_to_taskid.update(outputs.label_to_taskid)
        to_run.update(outputs.to_run)
    combined.to_run = sorted(to_run)
    return combined


# --- the callbacks --------------------------------------------------------------------------


def _times(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActionFailedError(f"times must be a whole number of at least 1, not {value!r}")
    return value


def add_new_jobs(run: Run) -> None:
    push = load_push(run.tc, run.request.task_group_id)
    labels = run.request.input["tasks"]
    for label in labels:
        if label not in push.graph:
            raise ActionFailedError(f"{label} was not found in the task-graph")
    for copy in range(_times(run.request.input.get("times", 1))):
        create_tasks(run, push, labels, str(copy))


def _should_retrigger(push: Push, label: str) -> bool:
    entry = push.graph.get(label)
    return bool(entry and (entry.get("attributes") or {}).get("retrigger", False))


def _rerun(run: Run, push: Push, label: str) -> None:
    """Rerun the push's task for ``label`` when it failed (taskgraph's _rerun_task)."""
    if label not in push.label_to_taskid:
        raise ActionFailedError(f"{label} has no task on this push to rerun")
    task_id = push.label_to_taskid[label]
    state = run.tc.queue.get(task_id).state
    if state not in RERUN_STATES:
        run.log.append(f"No need to rerun {label}: state '{state}' not in {RERUN_STATES}!")
        return
    run.tc.queue.rerun(task_id)
    run.log.append(f"Reran {label}")


def retrigger_multiple(run: Run) -> None:
    push = load_push(run.tc, run.request.task_group_id)
    for i, request in enumerate(run.request.input.get("requests", [])):
        labels = list(request.get("tasks") or [])
        for label in labels:
            if not _should_retrigger(push, label):
                _rerun(run, push, label)
        retrigger = [label for label in labels if _should_retrigger(push, label)]
        for j in range(_times(request.get("times", 1))):
            create_tasks(run, push, retrigger, f"{i}-{j}")


def _cancel(run: Run, task_id: str) -> None:
    try:
        run.tc.queue.cancel(task_id)
    except TaskclusterError as error:
        if error.status != 409:  # past its deadline: not running anymore
            raise
        run.log.append(f'Task "{task_id}" is past its deadline and cannot be cancelled.')
        return
    run.log.append(f"Cancelled task {task_id}")


def cancel(run: Run) -> None:
    target = run.request.target_task_id
    if target is None:
        raise ActionFailedError("the cancel action needs a task (ACTION_TASK_ID is null)")
    _cancel(run, target)


def cancel_all(run: Run) -> None:
    queue = run.tc.queue
    group = queue.groups.get(run.request.task_group_id)
    if group is None:
        raise ActionFailedError(f"task group {run.request.task_group_id} not found")
    own = run.request.task_id
    incomplete = [t for t in group["taskIds"] if t != own and queue.get(t).state in UNRESOLVED]
    run.log.append(f"Cancelling {len(incomplete)} tasks")
    for task_id in incomplete:
        _cancel(run, task_id)


def _target_label(run: Run, push: Push) -> str:
    """The label of the task the action acts on (its ``taskId``), which must be the push's."""
    target = run.request.target_task_id
    if not target:
        raise ActionFailedError(f"{run.request.callback} acts on a task, and none was given")
    label = task_label(run.tc.queue.get(target).definition)
    if label not in push.graph:
        raise ActionFailedError(f"{label} was not found in the task-graph")
    return label


def confirm_failures(run: Run) -> None:
    """Run the target task's job again ``times`` times (Gecko runs only its failing tests
    again; here the whole job is run, which a local worker cannot tell apart)."""
    push = load_push(run.tc, run.request.task_group_id)
    label = _target_label(run, push)
    for copy in range(_times(run.request.input.get("times", 1))):
        create_tasks(run, push, [label], str(copy))


def backfill(run: Run) -> None:
    """The target task's job on the ``depth`` pushes before its own (by pushlog id, through
    the Index, as Gecko's backfill finds them), ``times`` each, in each push's own group.
    Gecko triggers a ``backfill-task`` action on each of those pushes to create them; here
    the tasks are created at once, ``extra.parent`` naming this action task, and listed in
    its ``public/task-graph.json`` only (its label-to-taskid would mix several pushes)."""
    own = load_push(run.tc, run.request.task_group_id)
    label = _target_label(run, own)
    given = run.request.input
    depth = _times(given.get("depth", 9))
    times = _times(given.get("times", 1))
    pushlog_id = int(own.parameters.get("pushlog_id") or 0)
    values = {**own.parameters, "trust_domain": own.trust_domain}
    ids = range(pushlog_id - 1, max(pushlog_id - 1 - depth, 0), -1)
    if given.get("inclusive"):
        ids = range(pushlog_id, max(pushlog_id - 1 - depth, 0), -1)
    for earlier in ids:
        path = "{trust_domain}.v2.{project}.pushlog-id.{pushlog_id}.decision"
        try:
            decision = run.tc.index.find(path.format(**{**values, "pushlog_id": earlier})).task_id
        except (TaskclusterError, KeyError):
            run.log.append(f"No decision task for pushlog id {earlier}; skipped")
            continue
        push = load_push(run.tc, decision)
        if label not in push.graph:
            run.log.append(f"{label} is not in the task graph of push {earlier}; skipped")
            continue
        for copy in range(times):
            create_tasks(run, push, [label], f"{earlier}-{copy}")
    run.keep_labels = False


CALLBACKS: dict[str, Callback] = {
    "add-new-jobs": add_new_jobs,
    "confirm-failures": confirm_failures,
    "backfill": backfill,
    "retrigger-multiple": retrigger_multiple,
    "cancel": cancel,
    "cancel-all": cancel_all,
}


# --- running an action task -----------------------------------------------------------------


def _upload(run: Run, documents: dict[str, bytes], content_type: str) -> None:
    queue, request = run.tc.queue, run.request
    expires = queue.get(request.task_id).definition["expires"]
    for name, content in documents.items():
        queue.put_artifact(
            request.task_id, request.run_id, Artifact(name, content, content_type, expires)
        )


def _upload_outputs(run: Run) -> None:
    if not run.copies:
        return
    if not run.keep_labels:
        graph = _combined(run).documents()["public/task-graph.json"]
        _upload(run, {"public/task-graph.json": graph}, JSON)
        return
    if len(run.copies) > 1:
        for suffix, outputs in run.copies.items():
            _upload(run, outputs.documents(f"-{suffix}"), JSON)
    _upload(run, _combined(run).documents(), JSON)


def run_callback(tc: LocalTaskcluster, task_id: str, run_id: int) -> str:
    """Run the callback of a claimed action task's run ``run_id``; upload what it made
    and its log; the outcome to resolve the run with (``completed`` or ``failed``)."""
    request = action_request(tc.queue.get(task_id).definition, task_id, run_id)
    run = Run(tc, request)
    run.log.append(f"Running action callback {request.callback} on {request.task_group_id}")
    outcome = "completed"
    try:
        callback = CALLBACKS.get(request.callback)
        if callback is None:
            known = ", ".join(CALLBACKS)
            raise ActionFailedError(
                f"Unknown callback: {request.callback}. Known callbacks: {known}"
            )
        callback(run)
        _upload_outputs(run)
    except Exception as error:  # as taskgraph's action-callback: any error fails the task
        run.log.append(f"{type(error).__name__}: {error}")
        outcome = "failed"
    _upload(run, {LOG: "\n".join(run.log).encode() + b"\n"}, "text/plain; charset=utf-8")
    return outcome


def run_action(
    tc: LocalTaskcluster, task_id: str, *, worker_group: str = "local", worker_id: str = "actions"
) -> str:
    """Claim the pending action task ``task_id``, run its callback and resolve it; its
    final state (``completed`` or ``failed``)."""
    record = tc.queue.get(task_id)
    if not is_action_task(record.definition):
        raise ValueError(f"task {task_id} is not an action task")
    run_id = tc.queue.claim(task_id, worker_group, worker_id)
    tc.queue.resolve(task_id, run_id, run_callback(tc, task_id, run_id))
    return tc.queue.get(task_id).state
