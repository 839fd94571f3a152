"""From labels to scheduled, tracked tasks: plan, preview or hold, submit, follow, report."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.graph import GraphError, Materializer, NewTask, Plan, TaskGraphIndex, plan
from bot.metrics import ERRORS, SCHEDULE_SECONDS, TASKS_CREATED
from bot.request import Progress, Replier
from bot.revisions import RevisionError, expand_revision
from bot.service import Bot, Context
from bot.store import PlannedTask, RequestRecord
from bot.tc.actions import ActionError, render_action, trigger
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.submit import submit
from bot.tc.tracking import Tracker
from bot.tctime import format_time, parse_time
from grammar import Retrigger, Revision, Schedule, Try

log = logging.getLogger(__name__)

SHOWN = 15
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


def task_url(ctx_bot: Bot, task_id: str) -> str:
    return f"{ctx_bot.clients.queue.options['rootUrl']}/tasks/{task_id}"


def group_url(ctx_bot: Bot, group_id: str) -> str:
    return f"{ctx_bot.clients.queue.options['rootUrl']}/tasks/groups/{group_id}"


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
        await post_card(
            bot, replier, record, await bot.store.plan(request_id), header, resumed=True
        )
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
    renewer = asyncio.create_task(_keep_lease(bot, request_id, lost))
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


async def post_card(
    bot: Bot,
    replier: Replier,
    record: RequestRecord,
    stored: list[PlannedTask],
    header: str | None = None,
    *,
    resumed: bool = False,
) -> dict[str, Any]:
    """The status card: what was asked, where the tasks are. Posted once; an attempt that
    carries on after a crash brings the card it finds up to date instead."""
    request_id = record.id
    group = record.decision_task_id or ""
    lines = [header or f"[{request_id}] {record.command}", f"  task group: {group_url(bot, group)}"]
    treeherder = bot.settings.project(record.project).treeherder_url
    if treeherder and record.revision:
        query = f"repo={record.project}&revision={record.revision}"
        lines.append(f"  treeherder: {treeherder.rstrip('/')}/jobs?{query}")
    wanted = requested_tasks(stored)
    for task in wanted[:SHOWN]:
        lines.append(f"  {task.label}: {task_url(bot, task.task_id)}")
    if len(wanted) > SHOWN:
        lines.append(f"  … and {len(wanted) - SHOWN} more")
    body = "\n".join(lines)
    earlier = await bot.store.reply(request_id, "chat", record.place)
    reference = str(earlier["reference"]) if earlier and earlier["reference"] else None
    in_place = bool(getattr(replier, "edits_in_place", False))
    find_card = getattr(replier, "find_card", None)
    if in_place and reference is None and resumed and find_card is not None:
        reference = await find_card(request_id)  # posted, then the poster died
    if in_place and reference is not None:
        # an earlier attempt posted the card before it stopped: bring that one up to date
        await replier.edit(reference, body)
    else:
        reference = await replier.post(body)
    await bot.store.save_reply(request_id, "chat", record.place, body, reference)
    await report_progress(bot, replier, record, body, f"{len(stored)} tasks submitted")
    return {"body": body, "reference": reference}


async def report_progress(
    bot: Bot,
    replier: Replier,
    record: RequestRecord,
    text: str,
    title: str,
    *,
    finished: bool = False,
    failed: int = 0,
) -> None:
    """Show where the request stands beside the chat, where the replier can (a GitHub check
    run). Best effort: the status card has said it already, so a failure is only logged."""
    check_run = getattr(replier, "check_run", None)
    if check_run is None or not record.revision:
        return
    earlier = await bot.store.reply(record.id, "check", record.place)
    reference = str(earlier["reference"]) if earlier and earlier["reference"] else None
    progress = Progress(
        record.id,
        record.revision,
        f"[{record.id}] {record.command or record.text}",
        title,
        text,
        group_url(bot, record.decision_task_id or ""),
        finished=finished,
        failed=failed,
    )
    try:
        reference = await check_run(reference, progress)
    except Exception as error:
        ERRORS.labels("github").inc()
        log.warning("the check run of %s could not be updated: %s", record.id, error)
        return
    if reference is not None:
        await bot.store.save_reply(record.id, "check", record.place, title, reference)


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


def requested_tasks(stored: list[PlannedTask]) -> list[PlannedTask]:
    """The tasks people asked for, not their dependencies (a requested job may also be a
    dependency of another: a build and its tests). Plans stored before the store kept the
    flag: every task nothing else in the plan depends on, plus copies."""
    if any(t.requested for t in stored):
        return [t for t in stored if t.requested]
    depended = {d for t in stored for d in t.definition.get("dependencies", [])}
    return [t for t in stored if t.task_id not in depended or t.copy > 0]


async def track(bot: Bot, replier: Replier, request_id: str) -> None:
    """Follow the request's tasks; the store keeps every state. Where replies can be edited
    (GitHub) the status card is edited in place; elsewhere (console, IRC) a line is sent
    as each task finishes. A summary ends it either way. Once per process at a time."""
    if request_id in bot.following:
        return
    bot.following.add(request_id)
    try:
        await _follow(bot, replier, request_id)
    finally:
        bot.following.discard(request_id)


async def _follow(bot: Bot, replier: Replier, request_id: str) -> None:
    record = await bot.store.request(request_id)
    assert record is not None
    stored = {t.task_id: t for t in await bot.store.plan(request_id)}
    card = await bot.store.reply(request_id, "chat", record.place)
    in_place = bool(getattr(replier, "edits_in_place", False))
    if in_place and card is None:  # the replica that submitted it died before the card
        card = await post_card(bot, replier, record, list(stored.values()), resumed=True)
    tracker = Tracker(
        bot.clients.queue,
        record.decision_task_id or "",
        set(stored),
        amqp_url=bot.settings.amqp_url,
        poll_interval=bot.settings.poll_interval,
    )
    lost = asyncio.Event()
    renewer = asyncio.create_task(_keep_lease(bot, request_id, lost))
    try:
        async for update in tracker.updates():
            if lost.is_set():
                log.warning("another replica follows %s now; this one stops", request_id)
                return
            await bot.store.set_task_state(update.task_id, update.state)
            if update.state not in ("completed", "failed", "exception"):
                continue
            counts = tracker.summary()
            done = sum(counts[s] for s in ("completed", "failed", "exception"))
            if in_place:
                assert card is not None
                body = render_card(
                    bot,
                    card["body"],
                    stored,
                    tracker.states,
                    f"{done}/{len(stored)} done: {_counts(counts)}",
                )
                await replier.edit(card["reference"], body)
                title = f"{done}/{len(stored)} done: {_counts(counts)}"
                await report_progress(bot, replier, record, body, title)
                continue
            task = stored[update.task_id]
            line = f"[{request_id}] {done}/{len(stored)} done: {_counts(counts)}"
            if update.state != "completed":
                line += f": {task.label} {update.state} {task_url(bot, update.task_id)}"
            await replier.post(line)
    except Exception:
        log.exception("tracking %s failed", request_id)
        return
    finally:
        renewer.cancel()
    if lost.is_set():
        return
    counts = tracker.summary()
    summary = f"finished: {_counts(counts)}"
    # The final reply goes first and the state after it: a replica that dies in between
    # leaves the request open, and whoever takes it over sends the summary again.
    try:
        if in_place:
            assert card is not None
            body = render_card(bot, card["body"], stored, tracker.states, summary)
            await bot.store.save_reply(request_id, "chat", record.place, body, None)
            await replier.edit(card["reference"], body)
            failed = counts["failed"] + counts["exception"]
            await report_progress(bot, replier, record, body, summary, finished=True, failed=failed)
        else:
            await replier.post(f"[{request_id}] {summary}")
    except Exception:
        # The summary is in the store; the reply is what failed: finish anyway.
        log.exception("the final reply of %s could not be sent", request_id)
    if not lost.is_set():
        await bot.store.set_state(request_id, "finished")


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
        stored = await bot.store.plan(record.id)
        await post_card(bot, ctx.replier, record, stored, resumed=True)
        bot.spawn(track(bot, ctx.replier, record.id))
    else:
        await ctx.reply(f"[{record.id}] was handled already: {record.state.replace('_', ' ')}.")
    return record.id


async def hold(bot: Bot, request_id: str) -> bool:
    """Take the request for this replica. Another replica holds it: if that one died, its
    hold runs out within a lease, so wait that long; if it is alive, it keeps it."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + bot.lease_seconds * 1.5
    while not await bot.store.claim_request(request_id, bot.instance, lease=bot.lease_seconds):
        if loop.time() > give_up:
            return False
        await asyncio.sleep(bot.lease_seconds / 6)
    return True


async def _keep_lease(bot: Bot, request_id: str, lost: asyncio.Event) -> None:
    """Renew this replica's hold on the request while it follows it; set ``lost`` when
    another replica took it over (this one stalled past the lease)."""
    while True:
        await asyncio.sleep(bot.lease_seconds / 3)
        if not await bot.store.claim_request(request_id, bot.instance, lease=bot.lease_seconds):
            lost.set()
            return


def render_card(
    bot: Bot, header: str, stored: dict[str, PlannedTask], states: dict[str, str], summary: str
) -> str:
    """The status card: what was asked, a table of the requested jobs, and where it stands."""
    lines = [header, "", "| job | state |", "| --- | --- |"]
    for task in requested_tasks(list(stored.values()))[:SHOWN]:
        state = states.get(task.task_id, "pending")
        lines.append(f"| [{task.label}]({task_url(bot, task.task_id)}) | {state} |")
    lines += ["", f"**{summary}**"]
    return "\n".join(lines)


def _counts(counts: Counter[str]) -> str:
    parts = [f"{counts['completed']} ok"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["exception"]:
        parts.append(f"{counts['exception']} exception")
    return ", ".join(parts)
