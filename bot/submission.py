"""Getting a stored plan into Taskcluster: directly (createTask, resumable after a crash) or
through the push's in-tree add-new-jobs action; one ``Submitter`` per project mode."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from taskcluster.exceptions import TaskclusterRestFailure

from bot.acting import ScopesUnknownError, acting_for, preflight
from bot.action_mode import (
    TriggerUnknownError,
    action_input,
    action_row,
    fire,
    follow_action,
    prepare_action,
    push_actions,
    scheduling_action,
)
from bot.core.replies import EditsInPlace, Replier
from bot.core.runtime import Runtime
from bot.core.settings import Mode, ProjectSettings
from bot.graph import NewTask
from bot.metrics import SCHEDULE_SECONDS, TASKS_CREATED
from bot.reporting import (
    by_push,
    card_again,
    group_url,
    post_card,
    requested_tasks,
    task_url,
    track,
)
from bot.store import PlannedTask, RequestRecord, RequestState
from bot.tc.actions import ActionError
from bot.tc.scopes import create_task_needs, trigger_hook_needs
from bot.tc.submit import submit
from bot.tctime import format_time, parse_time

log = logging.getLogger(__name__)


class Submitter(Protocol):
    """How one mode gets a request's planned tasks created, and reports that it did."""

    # The state a request is in while it is submitted this way (only "submitting" is
    # carried on after a crash).
    state: RequestState

    async def submit(
        self, bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
    ) -> None: ...


class DirectSubmitter:
    """createTask for each planned definition, with the bot's credentials."""

    state = RequestState.SUBMITTING

    async def submit(
        self, bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
    ) -> None:
        await submit_request(bot, replier, record.id, header=header)


class ActionSubmitter:
    """The push's own in-tree action (add-new-jobs; retrigger-multiple for a retrigger)
    creates the tasks in an action task, which the bot then follows to the tasks."""

    state = RequestState.TRIGGERING

    async def submit(
        self, bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
    ) -> None:
        if not await bot.claim(record.id):
            await replier.post(f"[{record.id}] is being handled by another replica of the bot.")
            return
        # In hand, and held while the hook runs: the resume sweep (here or on another
        # replica) leaves a request being triggered alone.
        done = bot.submitting[record.id] = asyncio.Event()
        try:
            async with bot.renewing(record.id):
                await self._submit(bot, replier, record, header)
        finally:
            bot.submitting.pop(record.id, None)
            done.set()

    async def _submit(
        self, bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
    ) -> None:
        planned = await bot.store.plan(record.id)
        wanted = requested_tasks(planned)
        labels = list(dict.fromkeys(t.label for t in wanted))
        times = max(t.copy for t in wanted) + 1 if wanted else 1
        group = record.decision_task_id or ""
        name = "add-new-jobs"
        try:
            actions = await push_actions(bot, group)
            name = scheduling_action(record.command, actions)
            given = action_input(name, labels, times)
            rendered = await prepare_action(bot, group, name, given, actions=actions)
            acting = await acting_for(bot, record.source, record.actor, record.project)
            needs = trigger_hook_needs(rendered.hook_group_id, rendered.hook_id)
            problem = await preflight(bot, acting, needs)
            if problem:
                raise ActionError(problem)
            action_task = await fire(bot, group, rendered, acting.clients.hooks)
        except TriggerUnknownError as error:
            # The hook may have run: never "try again" (that could run it twice).
            said = UNKNOWN.format(
                request=record.id, name=name, error=error, group=group_url(bot, group)
            )
            await bot.store.replace_plan(record.id, [], state=RequestState.FAILED, error=said)
            await replier.post(said)
            return
        except asyncio.CancelledError:
            raise  # stopped mid-way: left "triggering", which the sweep ends after a lease
        except Exception as error:
            # Nothing was run: the request fails, its plan goes (asking again plans anew),
            # and the reason is said, or the dispatcher's "try again" follows.
            await _not_submitted(bot, record.id, planned, f"not triggered: {error}")
            if isinstance(error, (ActionError, TaskclusterRestFailure, ScopesUnknownError)):
                await replier.post(f"[{record.id}] the push's {name} action was not run: {error}")
                return
            raise
        try:
            await _retrying_store(
                lambda: bot.store.replace_plan(
                    record.id,
                    [action_row(name, action_task, given)],
                    state=RequestState.ACTION_RUNNING,
                )
            )
        except Exception as error:
            # The action task exists: asking again would run the action twice. Say so.
            log.exception("%s: action task %s triggered but not recorded", record.id, action_task)
            await replier.post(
                UNRECORDED.format(
                    request=record.id, name=name, link=task_url(bot, action_task), error=error
                )
            )
            return
        await bot.store.audit(
            actor=record.actor,
            source=record.source,
            place=record.place,
            action="trigger-action",
            request_id=record.id,
            detail={
                "action": name,
                "hook": f"{rendered.hook_group_id}/{rendered.hook_id}",
                "action_task": action_task,
            },
        )
        body = (
            f"{header or f'[{record.id}] {record.command}'}"
            f"\n  via the push's {name} action: {task_url(bot, action_task)}"
            f"\n  task group: {group_url(bot, group)}"
            "\n  (the jobs are listed here once the action task has created them)"
        )
        reference = await replier.post(body)
        await bot.store.save_reply(record.id, "chat", record.place, body, reference)
        bot.spawn(follow_action(bot, replier, record.id))


UNKNOWN = (
    "[{request}] the push's {name} hook was called but its answer was lost ({error}), so I "
    "cannot tell whether it ran: look for an `Action:` task in {group} before asking again."
)
UNRECORDED = (
    "[{request}] the push's {name} action task was triggered ({link}) but I could not record "
    "it ({error}), so I will not report on it: follow it there. Asking again would run the "
    "action a second time."
)


async def _retrying_store(write: Callable[[], Awaitable[None]], attempts: int = 4) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await write()
            return
        except Exception:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)


class AutoSubmitter:
    """Direct when the bot's scopes (and the requester's role, where one is mapped) cover
    every planned task, else the push's action: the bot creates what it may, and leaves
    the rest to the push's hook."""

    state = RequestState.TRIGGERING

    async def submit(
        self, bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
    ) -> None:
        planned = await bot.store.plan(record.id)
        needs = [n for t in planned for n in create_task_needs(t.definition)]
        try:
            acting = await acting_for(bot, record.source, record.actor, record.project)
            problem = await preflight(bot, acting, needs)
            if problem is None and await bot.scopes.own() is None:
                problem = "the bot may not ask its own scopes"  # cannot tell: the action
        except ScopesUnknownError as error:
            problem = str(error)
        except Exception as error:
            # nothing was run: failed (not left "triggering"), and the dispatcher's
            # "try again" follows
            await _not_submitted(bot, record.id, planned, f"scopes not checked: {error}")
            raise
        if problem and by_push(record, planned):
            # the push's add-new-jobs makes jobs on its own push only, not on earlier ones
            said = f"[{record.id}] nothing was created: {problem}"
            await _not_submitted(bot, record.id, planned, said)
            await replier.post(said)
        elif problem:
            log.info("%s: the push's action creates its jobs (%s)", record.id, problem[:200])
            await ActionSubmitter().submit(bot, replier, record, header)
        else:
            await submit_request(bot, replier, record.id, header=header)


SUBMITTERS: dict[Mode, Submitter] = {
    Mode.DIRECT: DirectSubmitter(),
    Mode.ACTION: ActionSubmitter(),
    Mode.AUTO: AutoSubmitter(),
}


def submitter_for(project: ProjectSettings) -> Submitter:
    return SUBMITTERS[project.mode]


async def submit_request(
    bot: Runtime,
    replier: Replier,
    request_id: str,
    *,
    header: str | None = None,
    resumed: bool = False,
) -> bool:
    """Submit a stored plan (again, after a crash: same taskIds); reply; follow it.
    Once per process at a time: the sweep and a redelivery may both come to carry it on."""
    underway = bot.submitting.get(request_id)
    if underway is not None:
        return await _after_the_other(bot, replier, request_id, header, underway)
    done = bot.submitting[request_id] = asyncio.Event()
    try:
        return await _submit(bot, replier, request_id, header=header, resumed=resumed)
    finally:
        del bot.submitting[request_id]
        done.set()


async def _after_the_other(
    bot: Runtime, replier: Replier, request_id: str, header: str | None, done: asyncio.Event
) -> bool:
    """Another task of this process is submitting the request: wait for it, then answer
    here as well (the card is edited in place where replies can be, never posted twice)."""
    log.info("%s is being submitted here already; waiting for it", request_id)
    await done.wait()
    record = await bot.store.request(request_id)
    if record is None:
        return False
    if record.state == RequestState.SUBMITTED:
        await card_again(bot, replier, record, header)
        return True
    if not isinstance(replier, EditsInPlace):
        await replier.post(f"[{request_id}] {record.state.words}")
    return record.state == RequestState.FINISHED


async def _submit(
    bot: Runtime, replier: Replier, request_id: str, *, header: str | None, resumed: bool
) -> bool:
    record = await bot.store.request(request_id)
    assert record is not None
    stored = await bot.store.plan(request_id)
    await bot.store.set_state(request_id, RequestState.SUBMITTING)
    tasks = await _fresh(bot, [NewTask(t.label, t.task_id, t.copy, t.definition) for t in stored])
    # Before anything is created: the scopes the tasks need, held by the bot's client and
    # by the requester's role (then carried as authorizedScopes on every createTask).
    try:
        acting = await acting_for(bot, record.source, record.actor, record.project)
        problem = await preflight(
            bot, acting, (n for t in tasks for n in create_task_needs(t.definition))
        )
    except ScopesUnknownError as error:
        problem = f"nothing was created: {error}"
    except Exception as error:
        # Auth did not answer: nothing was created, and the request must not stay
        # "submitting" (a later sweep would create it after the person asked again).
        await _not_submitted(bot, request_id, stored, f"scopes not checked: {error}")
        raise
    if problem:
        await bot.store.set_state(request_id, RequestState.FAILED, error=problem)
        await replier.post(f"[{request_id}] {problem}")
        return False
    started = time.monotonic()
    # A slow submission (Taskcluster retrying) keeps its hold, so no other replica takes
    # the request over while this one is still at it.
    async with bot.renewing(request_id) as lost:
        results = await submit(acting.clients.queue, tasks)
    SCHEDULE_SECONDS.observe(time.monotonic() - started)
    if lost.is_set() or not await bot.claim(request_id):
        # It stalled past its hold and another replica carries on (same taskIds): that
        # one posts the card and follows the tasks; two cards would be one too many.
        log.warning("another replica took %s over during its submission; it reports", request_id)
        return False
    TASKS_CREATED.inc(sum(1 for r in results if r.ok))
    for outcome in results:
        await bot.store.mark_submitted(outcome.task_id, ok=outcome.ok, error=outcome.error)
    failures = [r for r in results if not r.ok]
    if failures:
        first = failures[0]
        summary = (
            f"{len(failures)} of {len(results)} tasks could not be created; "
            f"first: {first.label}: {first.error}"
        )
        await bot.store.set_state(request_id, RequestState.FAILED, error=summary)
        await replier.post(f"[{request_id}] {summary}")
        return False
    if not await bot.store.move_state(
        request_id, RequestState.SUBMITTING, RequestState.SUBMITTED
    ):  # cancelled while its tasks were being created: what was created goes too
        gone = await _cancel_created(acting.clients.queue, [r.task_id for r in results if r.ok])
        await replier.post(CANCELLED_MIDWAY.format(request=request_id, count=gone))
        return False
    await post_card(bot, replier, record, stored, header, resumed=resumed)
    bot.spawn(track(bot, replier, request_id))
    return True


CANCELLED_MIDWAY = (
    "[{request}] was cancelled while its tasks were being created; {count} more cancelled."
)


async def _cancel_created(queue: Any, task_ids: list[str]) -> int:
    """Cancel ``task_ids`` (best effort: a task already resolved, or one the Queue does not
    know, is passed over); how many were cancelled."""
    cancelled = 0
    for task_id in task_ids:
        try:
            await queue.cancelTask(task_id)
            cancelled += 1
        except TaskclusterRestFailure as error:
            if error.status_code not in (404, 409):
                log.warning("could not cancel %s of a cancelled request: %s", task_id, error)
        except Exception as error:
            log.warning("could not cancel %s of a cancelled request: %s", task_id, error)
    return cancelled


async def _not_submitted(
    bot: Runtime, request_id: str, stored: list[PlannedTask], error: str
) -> None:
    """The request fails before any task was created; when none ever was, its plan goes,
    so the same command delivered again plans anew."""
    with contextlib.suppress(Exception):
        if any(t.submitted for t in stored):
            await bot.store.set_state(request_id, RequestState.FAILED, error=error)
        else:
            await bot.store.replace_plan(request_id, [], state=RequestState.FAILED, error=error)


# The Queue refuses a `created` more than 15 minutes from its clock; stay well inside.
FRESH_FOR = dt.timedelta(minutes=10)


async def _fresh(bot: Runtime, tasks: list[NewTask]) -> list[NewTask]:
    """Definitions planned long ago (a resumed request) get their times moved forward, but
    only for tasks the Queue does not have yet: an existing one must be resent unchanged."""
    now = dt.datetime.now(dt.UTC)
    if not tasks or now - parse_time(tasks[0].definition["created"]) < FRESH_FOR:
        return tasks
    shift = now - parse_time(tasks[0].definition["created"])
    refreshed = []
    for task in tasks:
        try:
            await bot.clients.queue.status(task.task_id)
            refreshed.append(task)  # already created before the interruption
            continue
        except TaskclusterRestFailure as error:
            if error.status_code != 404:
                raise
        definition = dict(task.definition)
        for key in ("created", "deadline", "expires"):
            if isinstance(definition.get(key), str):
                definition[key] = format_time(parse_time(definition[key]) + shift)
        refreshed.append(NewTask(task.label, task.task_id, task.copy, definition))
    return refreshed
