"""``cancel``: cancel what the bot scheduled, or a task."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskcluster.exceptions import TaskclusterRestFailure

from bot.acting import Acting, ScopesUnknownError, acting_for
from bot.action_mode import ACTION_ROW, TriggerUnknownError, run_action
from bot.bisecting import STOPPABLE, load, stop_search
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.core.settings import Mode
from bot.store import RequestRecord, RequestState
from bot.tc.actions import ActionError
from bot.tc.clients import Clients
from grammar import Cancel, RequestId


async def cancel(ctx: Context, cmd: Cancel) -> None:
    """cancel REQUEST-ID|TASKID|all [on REVISION]
    Cancels the tasks of a request, one task, or everything the bot scheduled on the push."""
    # One cancel at a time here: two at once would both read "not cancelled yet" and ask
    # the push's cancel action twice for each task.
    async with ctx.bot.exclusive("cancel"):
        await _cancel(ctx, cmd)


async def _cancel(ctx: Context, cmd: Cancel) -> None:
    bot = ctx.bot
    home = ctx.request.project
    task_ids: list[str] = []
    requests = []
    if cmd.all:
        project = (cmd.revision.project if cmd.revision else None) or home
        project = project or bot.settings.default_project
        node = (cmd.revision.node if cmd.revision else None) or ctx.request.revision or ""
        requests = [
            r
            for r in await bot.store.recent_requests(limit=1000)
            if r.project == project
            and node
            and (r.revision or "").startswith(node.lower())
            and r.state in (RequestState.SUBMITTED, RequestState.SUBMITTING)
        ]
    owners = list(requests)  # every request whose tasks this would cancel
    stopped: list[str] = []  # culprit searches stopped
    for target in cmd.targets:
        if isinstance(target, RequestId):
            record = await bot.store.request(target.text)
            if record is None:
                await ctx.refuse(f"There is no request {target.text}.")
                return
            search = await load(bot, record.id)
            if search is not None:  # a culprit search: stopped, and its running rounds with it
                if record.state not in STOPPABLE:
                    state = record.state.words
                    await ctx.refuse(ENDED_SEARCH.format(request=record.id, state=state))
                    return
                rounds = await stop_search(bot, record, search)
                stopped.append(record.id)
                requests += rounds
                owners += [record, *rounds]
                continue
            requests.append(record)
            owners.append(record)
            continue
        task_ids.append(target.text)
        planned_by = await bot.store.request_of_task(target.text)
        owner = await bot.store.request(planned_by) if planned_by else None
        if owner is not None:
            owners.append(owner)
        elif home is not None:
            # Not one of the bot's tasks: its project cannot be told, so a place of a
            # project may not cancel it.
            await ctx.refuse(NOT_OURS.format(task=target.text, home=home))
            return
    for owner in owners:
        if home is not None and not bot.settings.project(owner.project).admits(home):
            await ctx.refuse(ELSEWHERE.format(request=owner.id, home=home, project=owner.project))
            return
    groups: dict[str, str] = {}  # task -> its push's task group, for the push's cancel action
    by_action: set[str] = set()  # tasks of projects whose jobs their push's actions create
    projects: dict[str, str | None] = {}  # task -> its request's project
    for record in owners:
        for planned in await bot.store.plan(record.id):
            projects[planned.task_id] = record.project
            if record.decision_task_id:
                groups[planned.task_id] = record.decision_task_id
            if bot.settings.project(record.project).mode == Mode.ACTION:
                by_action.add(planned.task_id)
    for record in requests:
        if record.state == RequestState.ACTION_RUNNING:
            await ctx.refuse(STILL_ACTING.format(request=record.id))
            return
        by_push = bot.settings.project(record.project).mode == Mode.ACTION
        if by_push and record.state == RequestState.CANCELLED:
            # its cancel action tasks may not have run yet: asking again would double them
            await ctx.reply(ASKED_ALREADY.format(request=record.id))
            return
    # A request still being submitted has tasks in the Queue not yet marked as such: all
    # its tasks are asked for (one not created yet is unknown to the Queue, and the
    # submitter, finding its request cancelled, cancels what it then creates).
    in_flight: set[str] = set()
    for record in requests:
        submitting = record.state == RequestState.SUBMITTING
        if submitting:  # first, so that its submitter, when done, finds it cancelled
            await bot.store.set_state(record.id, RequestState.CANCELLED)
        for t in await bot.store.plan(record.id):
            if t.label.startswith(ACTION_ROW) or not (t.submitted or submitting):
                continue
            task_ids.append(t.task_id)
            if not t.submitted:
                in_flight.add(t.task_id)
    outcome = Cancelled()
    wanted = list(dict.fromkeys(task_ids))
    # Each task is cancelled as the person asking, in its project (their role, if mapped).
    acting: dict[str | None, Acting] = {}
    try:
        for project in {projects.get(t, home) for t in wanted}:
            acting[project] = await acting_for(bot, ctx.request.source, ctx.request.actor, project)
    except ScopesUnknownError as error:
        await ctx.refuse(f"Nothing was cancelled: {error}.")
        return
    if len([t for t in wanted if t in by_action]) > MAX_CANCEL_ACTIONS:
        await ctx.refuse(TOO_MANY_ACTIONS.format(count=len(wanted), cap=MAX_CANCEL_ACTIONS))
        return
    for task_id in wanted:
        clients = acting[projects.get(task_id, home)].clients
        if task_id in by_action:
            problem = await _by_action(ctx, task_id, groups[task_id], outcome, clients)
            if problem:
                await _settle(ctx, requests, outcome)
                await ctx.refuse(problem + _asked_before(outcome))
                return
            continue
        try:
            answer = await clients.queue.cancelTask(task_id)
        except TaskclusterRestFailure as error:
            if error.status_code == 404:
                if task_id not in in_flight:  # else: not created yet, and it will not be
                    outcome.unknown.append(task_id)
                continue
            if error.status_code == 409:  # resolved before it could be cancelled
                outcome.finished += 1
                continue
            if error.status_code == 403 and task_id in groups:
                # the bot may not cancel it itself: the push's own cancel action may
                problem = await _by_action(ctx, task_id, groups[task_id], outcome, clients)
                if problem:
                    await _settle(ctx, requests, outcome)
                    await ctx.refuse(problem + _asked_before(outcome))
                    return
                continue
            who = acting[projects.get(task_id, home)]
            if error.status_code == 403 and who.role is not None:
                await ctx.refuse(
                    f"Could not cancel {task_id}: {who.who} acts in Taskcluster as "
                    f"`{who.role}`, which may not cancel it" + _asked_before(outcome)
                )
                return
            await ctx.refuse(f"Could not cancel {task_id}: {error.status_code} {error}")
            return
        # The Queue answers with the task's status, cancelled now or resolved before.
        status = answer.get("status") or {}
        runs = status.get("runs") or []
        reason = runs[-1].get("reasonResolved") if runs else None
        if status.get("state") == "exception" and reason == "canceled":
            outcome.cancelled += 1
        else:
            outcome.finished += 1
    await _settle(ctx, requests, outcome)
    await bot.store.audit(
        actor=ctx.request.actor,
        source=ctx.request.source,
        place=ctx.request.place,
        action="cancel",
        detail={
            "tasks": len(task_ids),
            "cancelled": outcome.cancelled,
            "action_tasks": outcome.asked,
            "requests": [r.id for r in requests],
        },
    )
    of = f" of {', '.join(r.id for r in requests)}" if requests else ""
    if stopped:
        said = f"Stopped the search {', '.join(stopped)}"
        done = outcome.describe(of)
        await ctx.reply(f"{said}; {done[0].lower()}{done[1:]}" if task_ids else f"{said}.")
    elif not task_ids:
        await ctx.reply(f"Nothing to cancel{of}: no task of it was created.")
    elif outcome.unknown and not outcome.cancelled and not outcome.finished:
        await ctx.refuse(outcome.describe(of))
    else:
        await ctx.reply(outcome.describe(of))


async def _by_action(
    ctx: Context, task_id: str, group: str, outcome: Cancelled, clients: Clients
) -> str | None:
    """Cancel ``task_id`` through its push's in-tree cancel action (picked by the task's
    tags), its hook triggered with ``clients`` (the asker's); None, or why it could not be
    asked."""
    queue = ctx.bot.clients.queue
    try:
        status = (await queue.status(task_id)).get("status") or {}
        if status.get("state") not in ("unscheduled", "pending", "running"):
            outcome.finished += 1
            return None
        definition = await queue.task(task_id)
    except TaskclusterRestFailure as error:
        if error.status_code == 404:
            outcome.unknown.append(task_id)
            return None
        raise
    try:
        _, action_task = await run_action(
            ctx.bot,
            group,
            "cancel",
            {},
            task_id=task_id,
            task_tags=definition.get("tags") or {},
            hooks=clients.hooks,
        )
    except ActionError as error:
        return f"Could not cancel {task_id}: {error}"
    except TaskclusterRestFailure as error:
        return f"Could not cancel {task_id}: the push's cancel hook answered {error.status_code}"
    except TriggerUnknownError as error:
        return (
            f"Could not tell whether the push's cancel action ran for {task_id} ({error}); "
            "look for an `Action: Cancel` task before asking again"
        )
    outcome.asked.append(action_task)
    return None


async def _settle(ctx: Context, requests: list[RequestRecord], outcome: Cancelled) -> None:
    """Requests something was cancelled of (or asked to be) are cancelled, even when a
    later task could not be: asking again would ask twice for the earlier ones."""
    for record in requests:
        if outcome.cancelled or outcome.asked or record.state == RequestState.SUBMITTING:
            await ctx.bot.store.set_state(record.id, RequestState.CANCELLED)


def _asked_before(outcome: Cancelled) -> str:
    if not outcome.asked:
        return "."
    return f"; the push's cancel action was asked for {_tasks(len(outcome.asked))} before that."


ENDED_SEARCH = "The search {request} is {state} already: there is nothing of it to stop."
ASKED_ALREADY = (
    "{request} was cancelled already: the push's cancel action was asked for its tasks, and "
    "its action tasks may still be running. `status {request}` shows where they stand."
)
STILL_ACTING = (
    "{request}'s action task has not created its jobs yet, so there is nothing of it to "
    "cancel; `status {request}` says when it has, then cancel again."
)
MAX_CANCEL_ACTIONS = 50  # one action task (a hook run) per task
TOO_MANY_ACTIONS = (
    "That would run the push's cancel action {count} times (one action task per task); at "
    "most {cap} at once. Cancel fewer tasks, or use Taskcluster's cancel-all on the push."
)
NOT_OURS = (
    "Task `{task}` was not scheduled by me, so I cannot tell whether it is {home}'s: cancel it "
    "in Taskcluster, or by its request id."
)
ELSEWHERE = (
    "{request} is a request of {project}, and this place is for {home}: cancel it where it "
    "was asked for."
)


@dataclass
class Cancelled:
    """What a cancel came to, task by task."""

    cancelled: int = 0
    finished: int = 0
    unknown: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # action tasks asked to cancel one each

    def describe(self, of: str) -> str:
        if self.asked:
            parts = [
                f"Asked the push's cancel action to cancel {_tasks(len(self.asked))}{of} "
                f"(action task{'s' if len(self.asked) != 1 else ''} "
                f"{', '.join(self.asked[:3])}{', …' if len(self.asked) > 3 else ''})"
            ]
            if self.cancelled:
                parts.append(f"cancelled {_tasks(self.cancelled)} directly")
        elif self.cancelled:
            parts = [f"Cancelled {_tasks(self.cancelled)}{of}"]
        elif self.finished:
            parts = [f"Nothing was left to cancel{of}"]
        else:
            parts = [f"Nothing was cancelled{of}"]
        if self.finished:
            parts.append(f"{_tasks(self.finished)} had finished already")
        if self.unknown:
            parts.append(
                f"the Queue does not know {_tasks(len(self.unknown))} "
                f"(`{self.unknown[0]}`{', …' if len(self.unknown) > 1 else ''}): expired, or "
                "scheduled on a Taskcluster that was reset"
            )
        return "; ".join(parts) + "."


def _tasks(count: int) -> str:
    return f"{count} task{'s' if count != 1 else ''}"


COMMAND = Command(
    "cancel",
    cancel,
    Level.WRITE,
    examples=("cancel r7f3a", "cancel all on autoland@abc123f"),
)
