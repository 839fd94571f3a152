"""A push's in-tree actions run for the bot: checked, triggered, and followed to the tasks the
action task created, which are then reported and followed like tasks the bot created."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.core.replies import Replier
from bot.core.runtime import Runtime
from bot.graph.materialize import task_label
from bot.reporting import post_card, task_url, tell_requester, track
from bot.store import PlannedTask, RequestRecord, RequestState
from bot.tc.actions import (
    ActionError,
    HooksClient,
    RenderedAction,
    check_grant,
    has_action,
    render_action,
    trigger,
)
from bot.tc.decision import ArtifactError
from bot.tc.groups import group_entries
from bot.tc.schema_check import check_input_isolated
from bot.tc.scopes import satisfies
from bot.tc.tracking import Tracker

log = logging.getLogger(__name__)

# A real Gecko actions.json is about 31 kB; one far larger is refused unread.
MAX_ACTIONS_BYTES = 2 * 2**20
ACTION_ROW = "action:"  # the label prefix of a plan row that is an action task, not a job
NOT_RETRIGGERED = "the push's jobs that do not allow retriggers are run again only when they failed"
CANNOT_EXPAND = (
    "the decision task's scopes do not name `{grant}` and the bot may not expand them "
    "(it needs `auth:expand-scopes`), so whether the hook is the push's own cannot be told"
)


async def push_actions(bot: Runtime, decision_task_id: str) -> dict[str, Any]:
    """The push's actions.json, or ActionError saying why there is none."""
    try:
        data = await bot.decisions.artifact(
            decision_task_id, "public/actions.json", limit=MAX_ACTIONS_BYTES
        )
    except ArtifactError as error:
        raise ActionError(f"the push's actions.json cannot be read: {error}") from None
    try:
        actions = json.loads(data)
    except ValueError as error:
        raise ActionError(f"the push's actions.json is not JSON: {error}") from None
    except RecursionError:
        raise ActionError("the push's actions.json is nested too deeply") from None
    if not isinstance(actions, dict):
        raise ActionError("the push's actions.json is not an object")
    return actions


async def check_granted(bot: Runtime, decision_task_id: str, rendered: RenderedAction) -> None:
    """The decision task must hold the hook's ``in-tree:hook-action:`` scope (its roles
    expanded when the scopes themselves do not say), as Treeherder checks."""
    definition = await bot.decisions.definition(decision_task_id)
    scopes = [str(s) for s in definition.get("scopes") or ()]
    if satisfies(scopes, rendered.grant):
        return
    if not any(s.startswith("assume:") for s in scopes):
        check_grant(scopes, rendered)
    try:
        expanded = await bot.clients.auth.expandScopes({"scopes": scopes})
    except TaskclusterRestFailure as error:
        if error.status_code in (401, 403):
            raise ActionError(CANNOT_EXPAND.format(grant=rendered.grant)) from None
        raise
    check_grant([str(s) for s in expanded.get("scopes", [])], rendered)


class TriggerUnknownError(RuntimeError):
    """The hook was called and its answer lost (a timeout, a 5xx after retries): whether it
    ran cannot be told, and a hook run has no key to ask by."""


async def prepare_action(
    bot: Runtime,
    decision_task_id: str,
    name: str,
    input: Any,
    *,
    task_id: str | None = None,
    task_tags: Mapping[str, str] | None = None,
    actions: dict[str, Any] | None = None,
) -> RenderedAction:
    """The push's action ``name`` rendered, its input and grant checked; nothing run."""
    actions = actions if actions is not None else await push_actions(bot, decision_task_id)
    rendered = render_action(
        actions,
        name,
        task_group_id=decision_task_id,
        input=input,
        task_id=task_id,
        task_tags=task_tags,
        check=False,
    )
    await check_input_isolated(rendered.action, input)
    await check_granted(bot, decision_task_id, rendered)
    return rendered


async def fire(
    bot: Runtime,
    decision_task_id: str,
    rendered: RenderedAction,
    hooks: HooksClient | None = None,
) -> str:
    """Trigger the hook (with ``hooks``: the requester's, else the bot's); its action task's
    id. A refusal (4xx) means it did not run; a lost answer is TriggerUnknownError."""
    try:
        return await trigger(hooks or bot.clients.hooks, rendered)
    except TaskclusterRestFailure as error:
        if error.status_code is not None and error.status_code < 500:
            raise
        raise TriggerUnknownError(f"the hook answered {error.status_code}") from error
    except ActionError:
        raise
    except Exception as error:
        raise TriggerUnknownError(f"{type(error).__name__}: {error}") from error
    finally:
        bot.decisions.forget_labels(decision_task_id)


async def run_action(
    bot: Runtime,
    decision_task_id: str,
    name: str,
    input: Any,
    *,
    task_id: str | None = None,
    task_tags: Mapping[str, str] | None = None,
    actions: dict[str, Any] | None = None,
    hooks: HooksClient | None = None,
) -> tuple[RenderedAction, str]:
    """Check and trigger the push's action ``name``; the action and its action task's id."""
    rendered = await prepare_action(
        bot,
        decision_task_id,
        name,
        input,
        task_id=task_id,
        task_tags=task_tags,
        actions=actions,
    )
    return rendered, await fire(bot, decision_task_id, rendered, hooks)


def scheduling_action(command: str | None, actions: Mapping[str, Any]) -> str:
    """Which action creates a request's jobs: a retrigger uses the push's
    ``retrigger-multiple`` (as Treeherder and mozci do) when it has one."""
    verb = (command or "").split(" ", 1)[0]
    if verb == "retrigger" and has_action(actions, "retrigger-multiple"):
        return "retrigger-multiple"
    return "add-new-jobs"


def action_input(action: str, labels: list[str], times: int) -> dict[str, Any]:
    if action == "retrigger-multiple":
        return {"requests": [{"tasks": labels, "times": times}]}
    return {"tasks": labels, "times": times}


def action_row(name: str, task_id: str, input: Any, *, generic: bool = False) -> PlannedTask:
    """The plan row standing for an action task until it has created the jobs. ``generic``:
    an action asked for by name, which may create nothing and still have done its work."""
    definition = {"action": name, "input": input, "generic": generic}
    return PlannedTask(task_id, ACTION_ROW + name, 0, 0, definition, requested=True)


def waiting_on(stored: list[PlannedTask]) -> PlannedTask | None:
    """The action task a request waits on, if its plan is one."""
    return next((t for t in stored if t.label.startswith(ACTION_ROW)), None)


async def follow_action(bot: Runtime, replier: Replier, request_id: str) -> None:
    """Wait for the request's action task; then report and follow the tasks it created.
    Once per process at a time."""
    if request_id in bot.following:
        return
    bot.following.add(request_id)
    try:
        created = await _await_action(bot, replier, request_id)
    finally:
        bot.following.discard(request_id)
    if created:
        await track(bot, replier, request_id)


async def _await_action(bot: Runtime, replier: Replier, request_id: str) -> bool:
    """Wait for the action task; True once the request's plan is the tasks it created."""
    record = await bot.store.request(request_id)
    stored = await bot.store.plan(request_id)
    row = waiting_on(stored)
    if record is None or row is None:
        return False
    group = record.decision_task_id or ""
    name = row.label.removeprefix(ACTION_ROW)
    tracker = Tracker(
        bot.clients.queue,
        group,
        {row.task_id},
        amqp_url=bot.settings.amqp_url,
        poll_interval=bot.settings.poll_interval,
    )
    async with bot.renewing(request_id) as lost, contextlib.aclosing(tracker.updates()) as ups:
        async for _update in ups:
            if lost.is_set():
                return False
    if lost.is_set():
        return False
    state = tracker.states.get(row.task_id)
    try:
        if state != "completed":
            await _failed_action(bot, replier, record, row, group, state)
            return False
        return await _report_created(bot, replier, record, row, group)
    except Exception as error:
        # Never silent, never stuck: what could not be read is said, and the request ends.
        log.exception("%s: following the %s action task failed", request_id, name)
        failure = f"what the {name} action task did cannot be read: {error}"
        with contextlib.suppress(Exception):
            await bot.store.set_state(request_id, RequestState.FAILED, error=failure)
        await replier.post(f"[{request_id}] {failure} ({task_url(bot, row.task_id)})")
        return False


async def _failed_action(
    bot: Runtime,
    replier: Replier,
    record: RequestRecord,
    row: PlannedTask,
    group: str,
    state: str | None,
) -> None:
    """The action task did not complete: the request fails, keeping what it created before
    it stopped (so `status` and `cancel` see those tasks)."""
    name = row.label.removeprefix(ACTION_ROW)
    error = f"the push's {name} action task ended {state}: {task_url(bot, row.task_id)}"
    try:
        created = await created_by(bot, group, row.task_id, _wanted(row))
    except Exception as problem:
        log.warning("what the failed action task %s created is unknown: %s", row.task_id, problem)
        created = []
    if created:
        error += f"; it had created {len(created)} task(s) (`cancel {record.id}` cancels them)"
    await bot.store.replace_plan(record.id, created, state=RequestState.FAILED, error=error)
    await replier.post(f"[{record.id}] {error}")
    await tell_requester(bot, replier, record, error)


async def _report_created(
    bot: Runtime, replier: Replier, record: RequestRecord, row: PlannedTask, group: str
) -> bool:
    """The action task completed: its tasks become the request's, and get the card."""
    request_id = record.id
    name = row.label.removeprefix(ACTION_ROW)
    wanted = _wanted(row)
    created = await created_by(bot, group, row.task_id, wanted)
    await _note_pushes(bot, group, created)
    bot.decisions.forget_labels(group)
    rerun = await _rerun_by(bot, record.project or "", group, wanted, created, row)
    untouched = sorted(wanted - {t.label for t in created + rerun})
    did = (
        f"the push's {name} action ({task_url(bot, row.task_id)}) created {len(created)} "
        f"task{'s' if len(created) != 1 else ''}"
        + (f" and ran {len(rerun)} again (a rerun is not copied xN)" if rerun else "")
    )
    skipped = (
        f"; it did nothing for {len(untouched)} job(s) (`{untouched[0]}`"
        f"{', …' if len(untouched) > 1 else ''}): {NOT_RETRIGGERED}"
        if untouched
        else ""
    )
    if not created and not rerun and row.definition.get("generic"):
        # an action asked for by name (a cancel, a cache purge) may do its work in place
        done = f"the push's {name} action completed ({task_url(bot, row.task_id)})"
        await bot.store.replace_plan(request_id, [], state=RequestState.FINISHED)
        await replier.post(f"[{request_id}] finished: {done}; it made no task the bot can list")
        await tell_requester(bot, replier, record, f"finished: {done}")
        return False
    if not created and not rerun:
        await bot.store.replace_plan(request_id, [], state=RequestState.FAILED, error=did + skipped)
        await replier.post(f"[{request_id}] {did}{skipped}")
        return False
    await bot.store.replace_plan(request_id, created + rerun, state=RequestState.SUBMITTED)
    header = f"[{request_id}] {record.command}: {did}{skipped}"
    await post_card(bot, replier, record, created + rerun, header, resumed=True)
    return True


async def _note_pushes(bot: Runtime, group: str, created: list[PlannedTask]) -> None:
    """Tasks an action made on other pushes (a backfill's) get their push's revision noted
    as the bot notes it on its own, so the card and the failure lines name the push."""
    for other in {str(t.definition.get("taskGroupId") or "") for t in created} - {group, ""}:
        revision = str((await bot.decisions.parameters(other)).get("head_rev") or "")
        for task in created:
            if revision and task.definition.get("taskGroupId") == other:
                extra = task.definition.setdefault("extra", {})
                noted = extra.get("taskbot") if isinstance(extra, dict) else None
                if isinstance(extra, dict) and not isinstance(noted, dict):
                    extra["taskbot"] = noted = {}
                if isinstance(noted, dict):
                    noted.setdefault("revision", revision)


async def _rerun_by(
    bot: Runtime,
    project: str,
    group: str,
    wanted: set[str],
    created: list[PlannedTask],
    row: PlannedTask,
) -> list[PlannedTask]:
    """Jobs the action ran again rather than copied (taskgraph's retrigger reruns a task
    whose job does not allow retriggers): the push's task for the label, if its latest run
    is a rerun that started after the action task was created."""
    missing = sorted(wanted - {t.label for t in created})
    if not missing:
        return []
    routes = bot.settings.project(project).routes
    try:
        labels = await bot.decisions.merged_labels(group, project, routes)
    except Exception as error:  # the Index may not be ours to list: the decision's own then
        log.warning("merged labels of %s unavailable (%s); the decision's only", group, error)
        labels = await bot.decisions.label_to_taskid(group)
    status = await bot.clients.queue.status(row.task_id)
    action_created = str(status["status"]["runs"][0]["scheduled"])
    rerun: list[PlannedTask] = []
    for label in missing:
        task_id = labels.get(label)
        if task_id is None:
            continue
        try:
            runs = (await bot.clients.queue.status(task_id))["status"].get("runs") or []
        except TaskclusterRestFailure as error:
            log.warning("the state of %s (%s) is unknown: %s", task_id, label, error)
            continue
        last = runs[-1] if runs else {}
        if last.get("reasonCreated") == "rerun" and str(last.get("scheduled")) >= action_created:
            position = len(created) + len(rerun)
            rerun.append(PlannedTask(task_id, label, 0, position, {}, True, requested=True))
    return rerun


def _wanted(row: PlannedTask) -> set[str]:
    given = row.definition.get("input") or {}
    labels = list(given.get("tasks") or [])
    for part in given.get("requests") or []:
        labels += list(part.get("tasks") or [])
    return {str(label) for label in labels}


async def created_by(
    bot: Runtime, group: str, action_task_id: str, wanted: set[str]
) -> list[PlannedTask]:
    """The tasks an action task created: its ``public/task-graph.json`` (taskId to task, as
    taskgraph's create_tasks writes it), else the group's tasks whose parent it is."""
    try:
        graph = json.loads(await bot.decisions.artifact(action_task_id, "public/task-graph.json"))
        found = [
            (str(task_id), str(entry.get("label") or task_label(entry.get("task") or {})), entry)
            for task_id, entry in graph.items()
            if isinstance(entry, dict)
        ]
        definitions = {task_id: entry.get("task") or {} for task_id, _, entry in found}
        pairs = [(task_id, label) for task_id, label, _ in found]
    except (ArtifactError, ValueError, AttributeError) as error:
        log.info("no task-graph.json of %s (%s); listing its group", action_task_id, error)
        pairs, definitions = await _children(bot, group, action_task_id)
    copies: dict[str, int] = defaultdict(int)
    created = []
    for position, (task_id, label) in enumerate(sorted(pairs, key=lambda p: p[1])):
        copy = copies[label]
        copies[label] += 1
        created.append(
            PlannedTask(
                task_id,
                label,
                copy,
                position,
                definitions.get(task_id, {}),
                submitted=True,
                requested=label in wanted,
            )
        )
    return created


async def _children(
    bot: Runtime, group: str, parent: str
) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    pairs: list[tuple[str, str]] = []
    definitions: dict[str, dict[str, Any]] = {}
    async for entry in group_entries(bot.clients.queue, group):
        task = entry.get("task") or {}
        if (task.get("extra") or {}).get("parent") == parent:
            task_id = str(entry["status"]["taskId"])
            pairs.append((task_id, task_label(task)))
            definitions[task_id] = task
    return pairs, definitions
