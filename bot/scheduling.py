"""From labels to scheduled tasks: find the push, plan, preview or hold, submit (directly or
through the push's add-new-jobs action), carry on after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, replace

from taskcluster.exceptions import TaskclusterRestFailure

from bot.graph import GraphError, Materializer, NewTask, Plan, TaskGraphIndex, plan
from bot.metrics import SCHEDULE_SECONDS, TASKS_CREATED
from bot.reporting import (
    SHOWN,
    card_again,
    group_url,
    hold,
    keep_lease,
    post_card,
    task_url,
    track,
)
from bot.request import Replier
from bot.revisions import RevisionError, expand_revision
from bot.service import Bot, Context
from bot.store import PlannedTask, RequestRecord
from bot.tc.actions import ActionError, render_action, trigger
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.submit import submit
from bot.tctime import format_time, parse_time
from grammar import Retrigger, Revision, Schedule, Try

log = logging.getLogger(__name__)

TOO_MANY_TASKS = (
    "That would create {count} tasks; one request may create at most {cap}. "
    "Narrow it with `for PLATFORM`, fewer jobs, or a smaller `xN`."
)
NOTHING = "That selects no job on this push, so nothing was scheduled."
BUSY = "[{request}] is being handled by another replica of the bot; `status {request}` follows it."
NAME_A_PUSH = (
    "Which push? This is not a pull request, so add `on REVISION`, e.g. "
    "`on {project}@0d1a26e` or `on {project}` for its latest push."
)


@dataclass(frozen=True, slots=True)
class Push:
    """A push the bot has found: project, revision (None: not known) and decision task."""

    project: str
    revision: str | None
    decision_task_id: str
    graph: TaskGraphIndex
    existing: dict[str, str]
    latest: bool = False  # asked for as the project's latest push

    def describe(self) -> str:
        if self.revision is None:
            return f"{self.project}@latest"
        return f"{self.project}@{self.revision[:12]}" + (" (latest)" if self.latest else "")


async def find_push(ctx: Context, revision: Revision | None) -> Push | None:
    """The push a command is about, or None after telling the user why it was not found."""
    settings = ctx.bot.settings
    project = (
        (revision.project if revision else None) or ctx.request.project or settings.default_project
    )
    if revision is None and ctx.request.revision is None and ctx.request.needs_revision:
        await ctx.reply(NAME_A_PUSH.format(project=project))
        return None
    node = revision.node if revision is not None else ctx.request.revision
    if revision is not None and revision.node is None:
        node = None  # `on latest` / `on autoland`: the newest push, even on a pull request
    if node is not None:
        try:
            node = await expand_revision(ctx.bot, project, node, ctx.request)
        except RevisionError as error:
            await ctx.reply(str(error))
            return None
    try:
        decision = await ctx.bot.decisions.find(project, node, settings.project(project).routes)
        graph = await ctx.bot.decisions.graph(decision)
        existing = await ctx.bot.decisions.label_to_taskid(decision)
    except DecisionNotFoundError as error:
        await ctx.reply(str(error))
        return None
    except (ArtifactError, GraphError) as error:
        await ctx.reply(f"The push's task graph could not be read: {error}")
        return None
    if node is None:  # the latest push: say which one it is, for the record and the links
        found = await ctx.bot.decisions.revision_of(decision)
        return Push(project, found, decision, graph, existing, latest=True)
    return Push(project, node, decision, graph, existing)


def describe_plan(result: Plan) -> str:
    requested = sum(len(ids) for ids in (result.copies or {}).values()) or len(result.requested)
    dependencies = result.new_task_count - requested
    return (
        f"{result.new_task_count} new task{'s' if result.new_task_count != 1 else ''} "
        f"({requested} requested, {dependencies} dependenc{'ies' if dependencies != 1 else 'y'}), "
        f"{len(result.reuse)} reused"
    )


async def schedule_labels(
    ctx: Context,
    push: Push,
    labels: list[str],
    *,
    times: int,
    dry_run: bool,
    command: Schedule | Retrigger | Try,
) -> str | None:
    """Plan, then preview, hold for confirmation, or submit; the request id, if one was made."""
    bot = ctx.bot
    command_text = command.canonical()
    # Replies name the push they resolved to, so their headline leaves out `on REVISION`.
    headline = replace(command, revision=None).canonical()
    if not labels:
        await ctx.reply(NOTHING)
        return None
    request_id = await bot.request_id_for(ctx)
    ctx.request.made.append(request_id)
    earlier = await bot.store.request(request_id)
    if earlier is not None and (
        earlier.state not in ("received", "planned", "failed") or await bot.store.plan(request_id)
    ):
        return await carry_on(ctx, earlier)
    try:
        result = plan(push.graph, labels, push.existing, request_id=request_id, times=times)
    except GraphError as error:
        await ctx.reply(f"That cannot be planned: {error}")
        return None
    project = bot.settings.project(push.project)
    cap = project.max_new_tasks or bot.settings.max_new_tasks
    threshold = project.confirm_threshold or bot.settings.confirm_threshold
    if result.new_task_count > cap:
        await ctx.reply(TOO_MANY_TASKS.format(count=result.new_task_count, cap=cap))
        return None
    scheduler_id = await bot.decisions.scheduler_of(push.decision_task_id)
    request = ctx.request
    if earlier is None:
        await bot.store.add_request(
            request_id,
            source=request.source,
            actor=request.actor,
            place=request.place,
            text=ctx.line,
            command=command_text,
            project=push.project,
            revision=push.revision,
            # Known from the start: a replica that carries on after this one died follows
            # the tasks (Pulse binds on the task group) and links the group with it.
            decision_task_id=push.decision_task_id,
        )
    if not await hold(bot, request_id):
        await ctx.reply(BUSY.format(request=request_id))
        return request_id
    materializer = Materializer(
        push.graph,
        decision_task_id=push.decision_task_id,
        scheduler_id=scheduler_id,
        root_url=bot.clients.queue.options["rootUrl"],
    )
    try:
        tasks = materializer.definitions(result, dt.datetime.now(dt.UTC))
        asked = set(result.requested)
        await bot.store.save_plan(
            request_id,
            [
                PlannedTask(t.task_id, t.label, t.copy, n, t.definition, requested=t.label in asked)
                for n, t in enumerate(tasks)
            ],
        )
    except Exception as error:
        # Never left "received" for good: failed, and the same command again plans anew.
        with contextlib.suppress(Exception):
            await bot.store.set_state(request_id, "failed", error=f"not planned: {error}")
        raise
    # The next state is set straight away (previewed, awaiting_confirmation or submitting):
    # a restart resumes "submitting" requests only, never a preview.
    action_mode = bot.settings.project(push.project).mode == "action"
    state = "previewed" if dry_run else None
    if state is None and result.new_task_count > threshold:
        state = "awaiting_confirmation"
    state = state or ("triggering" if action_mode else "submitting")
    await bot.store.set_state(request_id, state, decision_task_id=push.decision_task_id)
    await bot.store.audit(
        actor=request.actor,
        source=request.source,
        place=request.place,
        action="plan",
        request_id=request_id,
        detail={"command": command_text, "new": result.new_task_count, "reused": len(result.reuse)},
    )
    header = f"[{request_id}] {headline} on {push.describe()}: {describe_plan(result)}"
    if dry_run:
        await ctx.reply(preview(header, tasks) + "\n(dry run: nothing was scheduled)")
        return request_id
    if state == "awaiting_confirmation":
        await ctx.reply(
            preview(header, tasks) + f"\nThat is more than {threshold} tasks. To go ahead: "
            f"`confirm {request_id}` within {bot.settings.confirm_minutes} minutes."
        )
        return request_id
    if action_mode:
        await submit_action(ctx, push, request_id, labels, times, header)
        return request_id
    await submit_request(bot, ctx.replier, request_id, header=header)
    return request_id


async def submit_action(
    ctx: Context, push: Push, request_id: str, labels: list[str], times: int, header: str
) -> None:
    """Action mode: the push's own add-new-jobs action creates the tasks, in its action task."""
    bot = ctx.bot
    try:
        actions = json.loads(
            await bot.decisions.artifact(push.decision_task_id, "public/actions.json")
        )
        rendered = render_action(
            actions,
            "add-new-jobs",
            task_group_id=push.decision_task_id,
            input={"tasks": labels, "times": times},
        )
        action_task = await trigger(bot.clients.hooks, rendered)
    except (ArtifactError, ActionError, TaskclusterRestFailure) as error:
        await bot.store.set_state(request_id, "failed", error=str(error))
        await ctx.reply(
            f"[{request_id}] the push's add-new-jobs action could not be triggered: {error}"
        )
        return
    await bot.store.set_state(request_id, "submitted")
    await bot.store.audit(
        actor=ctx.request.actor,
        source=ctx.request.source,
        place=ctx.request.place,
        action="trigger-action",
        request_id=request_id,
        detail={"hook": f"{rendered.hook_group_id}/{rendered.hook_id}", "action_task": action_task},
    )
    await ctx.reply(
        f"{header}\n  via the push's add-new-jobs action: {task_url(bot, action_task)}"
        f"\n  task group: {group_url(bot, push.decision_task_id)}"
    )


def preview(header: str, tasks: list[NewTask]) -> str:
    lines = [header]
    for task in tasks[:SHOWN]:
        lines.append(f"  + {task.label}" + (f" (copy {task.copy + 1})" if task.copy else ""))
    if len(tasks) > SHOWN:
        lines.append(f"  … and {len(tasks) - SHOWN} more")
    return "\n".join(lines)


async def submit_request(
    bot: Bot,
    replier: Replier,
    request_id: str,
    *,
    header: str | None = None,
    resumed: bool = False,
) -> bool:
    """Submit a stored plan (again, after a crash: same taskIds); reply; follow it.
    Once per process at a time: the sweep and a redelivery may both come to carry it on."""
    if request_id in bot.submitting:
        return await _after_the_other(bot, replier, request_id, header)
    bot.submitting.add(request_id)
    try:
        return await _submit(bot, replier, request_id, header=header, resumed=resumed)
    finally:
        bot.submitting.discard(request_id)


async def _after_the_other(bot: Bot, replier: Replier, request_id: str, header: str | None) -> bool:
    """Another task of this process is submitting the request: wait for it, then answer
    here as well (the card is edited in place where replies can be, never posted twice)."""
    log.info("%s is being submitted here already; waiting for it", request_id)
    while request_id in bot.submitting:
        await asyncio.sleep(0.05)
    record = await bot.store.request(request_id)
    if record is None:
        return False
    if record.state == "submitted":
        await card_again(bot, replier, record, header)
        return True
    if not getattr(replier, "edits_in_place", False):
        await replier.post(f"[{request_id}] {record.state.replace('_', ' ')}")
    return record.state == "finished"


async def _submit(
    bot: Bot, replier: Replier, request_id: str, *, header: str | None, resumed: bool
) -> bool:
    record = await bot.store.request(request_id)
    assert record is not None
    stored = await bot.store.plan(request_id)
    await bot.store.set_state(request_id, "submitting")
    tasks = await _fresh(bot, [NewTask(t.label, t.task_id, t.copy, t.definition) for t in stored])
    started = time.monotonic()
    # A slow submission (Taskcluster retrying) keeps its hold, so no other replica takes
    # the request over while this one is still at it.
    lost = asyncio.Event()
    renewer = asyncio.create_task(keep_lease(bot, request_id, lost))
    try:
        results = await submit(bot.clients.queue, tasks)
    finally:
        renewer.cancel()
    SCHEDULE_SECONDS.observe(time.monotonic() - started)
    if lost.is_set() or not await bot.store.claim_request(
        request_id, bot.instance, lease=bot.lease_seconds
    ):
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
        await bot.store.set_state(request_id, "failed", error=summary)
        await replier.post(f"[{request_id}] {summary}")
        return False
    await bot.store.set_state(request_id, "submitted")
    await post_card(bot, replier, record, stored, header, resumed=resumed)
    bot.spawn(track(bot, replier, request_id))
    return True


# The Queue refuses a `created` more than 15 minutes from its clock; stay well inside.
FRESH_FOR = dt.timedelta(minutes=10)


async def _fresh(bot: Bot, tasks: list[NewTask]) -> list[NewTask]:
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


async def carry_on(ctx: Context, record: RequestRecord) -> str:
    """The same command again after an earlier attempt stopped partway (a replica died):
    go on from where the store says it got to, with the plan it saved; never plan anew."""
    bot = ctx.bot
    if not await hold(bot, record.id):
        await ctx.reply(BUSY.format(request=record.id))
        return record.id
    if record.state in ("received", "planned"):  # the plan was saved, nothing submitted
        await bot.store.set_state(record.id, "submitting")
        record = replace(record, state="submitting")
    if record.state == "submitting":
        log.warning("carrying on with %s where an earlier attempt stopped", record.id)
        await submit_request(bot, ctx.replier, record.id, resumed=True)
    elif record.state == "submitted":
        # say where it stands now (the card), then follow it as the first attempt would
        await card_again(bot, ctx.replier, record, None)
        bot.spawn(track(bot, ctx.replier, record.id))
    else:
        await ctx.reply(f"[{record.id}] was handled already: {record.state.replace('_', ' ')}.")
    return record.id
