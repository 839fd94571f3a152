"""From labels to scheduled tasks: find the push, plan, preview or hold for confirmation, hand
the plan to the project's submitter, carry on after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, replace

from bot.core.commands import Context
from bot.core.request import ReviewedCode
from bot.core.runtime import Runtime
from bot.core.settings import Mode
from bot.graph import (
    GraphError,
    Materializer,
    NewTask,
    Plan,
    TaskGraphIndex,
    cached_elsewhere,
    plan,
)
from bot.reporting import SHOWN, card_again, revision_of_task, track
from bot.revisions import RevisionError, expand_revision
from bot.store import PlannedTask, RequestRecord, RequestState
from bot.submission import submit_request, submitter_for
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.pushes import NoPushlogError, PushInfo, push_info
from grammar import Backfill, Retrigger, Revision, Schedule, Try

log = logging.getLogger(__name__)

TOO_MANY_TASKS = (
    "That would create {count} task{s}{besides}; one {what} may create at most {cap}. "
    "Narrow it with `for PLATFORM`, fewer jobs, or a smaller `xN`."
)
BESIDES = ", besides the {count} of the commands before it in this message"
HELD = "{header} — held: {why}. To go ahead: `confirm {request}` within {minutes} minutes."
TOO_BIG = "that is more than {threshold} tasks{besides}"
NOTHING = "That selects no job on this push, so nothing was scheduled."
BUSY = "[{request}] is being handled by another replica of the bot; `status {request}` follows it."
NOR_BUILT = (
    "Nor did Taskcluster's GitHub service or the pull request's checks name a decision task "
    "of that commit."
)
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


@dataclass(frozen=True, slots=True)
class FoundDecision:
    """The push a command names: its project, its full revision (None: the latest push) and
    its decision task."""

    project: str
    revision: str | None
    decision_task_id: str


async def find_decision(
    ctx: Context, revision: Revision | None, *, place_revision: bool = True
) -> FoundDecision | None:
    """The decision task of the push a command is about (the one it names, else the
    place's, else the project's latest), or None after telling the user why it was not
    found. ``place_revision`` False: the place's own push is never implied (the latest is)."""
    settings = ctx.bot.settings
    project = named_project(ctx, revision)
    implied = ctx.request.revision if place_revision else None
    if revision is None and implied is None and place_revision and ctx.request.needs_revision:
        await ctx.refuse(NAME_A_PUSH.format(project=project))
        return None
    node = revision.node if revision is not None else implied
    if revision is not None and revision.node is None:
        node = None  # `on latest` / `on autoland`: the newest push, even on a pull request
    if node is not None:
        node = await expanded(ctx, project, node)
        if node is None:
            return None
    try:
        try:
            decision = await ctx.bot.decisions.find(project, node, settings.project(project).routes)
        except DecisionNotFoundError as error:
            found = await pull_request_decision(ctx, project, node) if node else None
            if found is None:
                if not _on_github(ctx, project):
                    raise
                raise DecisionNotFoundError(f"{error} {NOR_BUILT}") from None
            decision = found
    except DecisionNotFoundError as error:
        await ctx.refuse(str(error))
        return None
    return FoundDecision(project, node, decision)


async def find_push(ctx: Context, revision: Revision | None) -> Push | None:
    """The push a command is about, with its graph and what it ran, or None after telling
    the user why it was not found."""
    found = await find_decision(ctx, revision)
    if found is None:
        return None
    project, node, decision = found.project, found.revision, found.decision_task_id
    try:
        push = await load_push(ctx.bot, project, node, decision)
    except DecisionNotFoundError as error:
        await ctx.refuse(str(error))
        return None
    except (ArtifactError, GraphError) as error:
        await ctx.refuse(f"The push's task graph could not be read: {error}")
        return None
    if node is None:  # the latest push: say which one it is, for the record and the links
        latest = await ctx.bot.decisions.revision_of(decision)
        return replace(push, revision=latest, latest=True)
    return push


async def load_push(bot: Runtime, project: str, revision: str | None, decision: str) -> Push:
    """The push of decision task ``decision``: its graph and what it ran (its own tasks and
    its actions'); the readers' errors (``ArtifactError``, ``GraphError``, ...) propagate."""
    # Both downloads at once: a cold push's graph is the long one.
    graph, existing = await asyncio.gather(
        bot.decisions.graph(decision),
        bot.decisions.merged_labels(decision, project, bot.settings.project(project).routes),
    )
    return Push(project, revision, decision, graph, existing)


async def pull_request_decision(ctx: Context, project: str, revision: str) -> str | None:
    """A decision task the Index does not hold (a pull request's: Taskcluster's GitHub
    integration adds no index route for it): the task groups Taskcluster's GitHub service
    built for the commit, then those the place's CI links (its check runs), each checked
    to be a decision task of that revision."""
    decisions = ctx.bot.decisions
    repositories = ctx.bot.settings.project(project).repositories
    groups = await decisions.built_for(ctx.bot.clients.github, repositories, revision)
    try:
        groups += await ctx.adapter.task_groups(ctx.request, revision)
    except Exception as error:
        log.warning("the place's links to task groups of %s: %s", revision, error)
    for group in dict.fromkeys(groups):
        if await decisions.decision_of_group(group, revision, repositories):
            return group
    return None


NO_PUSHLOG = (
    "{push} has no pushlog id, nor is it a push to a branch that says which head came before "
    "it (a pull request's push), so the pushes before it cannot be told: {verb} runs on a "
    "project's pushes in order."
)


async def place_in_order(ctx: Context, push: Push, verb: str) -> PushInfo | None:
    """Where ``push`` stands among its project's pushes, or None after saying it has no
    place (a pull request's push), so ``verb`` cannot go back from it."""
    try:
        return await push_info(ctx.bot.decisions, push.decision_task_id)
    except NoPushlogError:
        await ctx.refuse(NO_PUSHLOG.format(push=push.describe(), verb=verb))
        return None


def _on_github(ctx: Context, project: str) -> bool:
    origin = ctx.request.origin
    pull_request = isinstance(origin, ReviewedCode) and origin.pull_request
    return pull_request or bool(ctx.bot.settings.project(project).repositories)


def named_project(ctx: Context, revision: Revision | None) -> str:
    """The project a command is about: the one it names, else the place's, else the default."""
    named = revision.project if revision is not None else None
    return named or ctx.request.project or ctx.bot.settings.default_project


async def expanded(ctx: Context, project: str, node: str) -> str | None:
    """The full revision ``node`` names on ``project``, or None after saying why not."""
    try:
        return await expand_revision(ctx.bot, project, node, ctx.request, ctx.adapter)
    except RevisionError as error:
        await ctx.refuse(str(error))
        return None


def describe_plan(*results: Plan) -> str:
    """``N new tasks (R requested, D dependencies), U reused`` of one plan or several."""
    new = sum(r.new_task_count for r in results)
    requested = sum(
        sum(len(ids) for ids in (r.copies or {}).values()) or len(r.requested) for r in results
    )
    dependencies = new - requested
    return (
        f"{new} new task{'s' if new != 1 else ''} "
        f"({requested} requested, {dependencies} dependenc{'ies' if dependencies != 1 else 'y'}), "
        f"{sum(len(r.reuse) for r in results)} reused"
    )


async def schedule_labels(
    ctx: Context,
    push: Push,
    labels: list[str],
    *,
    times: int,
    dry_run: bool,
    command: Schedule | Retrigger | Try | Backfill,
    note: str | None = None,
    unsure: str | None = None,
    elsewhere: list[tuple[Push, list[str]]] | None = None,
) -> str | None:
    """Plan, then preview, hold for confirmation, or submit; the request id, if one was made.
    ``note`` goes under the headline; ``unsure`` holds the request for confirmation,
    saying why, whatever its size. ``elsewhere``: the jobs are planned on those pushes,
    each against its own graph (a backfill), not on ``push``, which the request is about."""
    bot = ctx.bot
    if elsewhere is not None:
        labels = [label for _, wanted in elsewhere for label in wanted]
    if not labels:
        await ctx.refuse(NOTHING)
        return None
    request_id = await bot.request_id_for(ctx.request, ctx.key)
    ctx.made.append(request_id)
    async with bot.exclusive(request_id):
        return await _plan_and_submit(
            ctx,
            push,
            labels,
            request_id,
            times=times,
            dry_run=dry_run,
            command=command,
            note=note,
            unsure=unsure,
            parts=elsewhere if elsewhere is not None else [(push, labels)],
        )


async def _plan_and_submit(
    ctx: Context,
    push: Push,
    labels: list[str],
    request_id: str,
    *,
    times: int,
    dry_run: bool,
    command: Schedule | Retrigger | Try | Backfill,
    note: str | None,
    unsure: str | None,
    parts: list[tuple[Push, list[str]]],
) -> str | None:
    bot = ctx.bot
    command_text = command.canonical()
    # Replies name the push they resolved to, so their headline leaves out `on REVISION`.
    headline = replace(command, revision=None).canonical()
    earlier = await bot.store.request(request_id)
    unplanned = (RequestState.RECEIVED, RequestState.PLANNED, RequestState.FAILED)
    if earlier is not None and (earlier.state not in unplanned or await bot.store.plan(request_id)):
        return await carry_on(ctx, earlier)
    results: list[tuple[Push, Plan]] = []
    try:
        for part, wanted in parts:
            # One request's jobs on several pushes get taskIds of their own on each.
            key = request_id if part is push else f"{request_id}/{part.decision_task_id}"
            results.append((part, await plan_on(bot, part, wanted, key, times)))
    except GraphError as error:
        await ctx.refuse(f"That cannot be planned: {error}")
        return None
    new_task_count = sum(r.new_task_count for _, r in results)
    project = bot.settings.project(push.project)
    cap = project.max_new_tasks or bot.settings.max_new_tasks
    threshold = project.confirm_threshold or bot.settings.confirm_threshold
    # The cap and the threshold are for the whole message: what its commands submitted so far.
    so_far = ctx.budget.tasks
    besides = BESIDES.format(count=so_far) if so_far else ""
    if so_far + new_task_count > cap:
        await ctx.refuse(
            TOO_MANY_TASKS.format(
                count=new_task_count,
                s="" if new_task_count == 1 else "s",
                besides=besides,
                what="message" if so_far else "request",
                cap=cap,
            )
        )
        return None
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
    if not await bot.hold(request_id):
        await ctx.reply(BUSY.format(request=request_id))
        return request_id
    try:
        tasks, planned_tasks = await materialized(
            bot, request_id, f"{request.source}:{request.actor}", results
        )
        await bot.store.save_plan(request_id, planned_tasks)
    except Exception as error:
        # Never left "received" for good: failed, and the same command again plans anew.
        with contextlib.suppress(Exception):
            await bot.store.set_state(
                request_id, RequestState.FAILED, error=f"not planned: {error}"
            )
        raise
    # The next state is set straight away (previewed, awaiting_confirmation or submitting):
    # a restart resumes "submitting" requests only, never a preview.
    submitter = submitter_for(project)
    state = RequestState.PREVIEWED if dry_run else submitter.state
    if not dry_run and (unsure or so_far + new_task_count > threshold):
        state = RequestState.AWAITING_CONFIRMATION
    await bot.store.set_state(request_id, state, decision_task_id=push.decision_task_id)
    await bot.store.audit(
        actor=request.actor,
        source=request.source,
        place=request.place,
        action="plan",
        request_id=request_id,
        detail={
            "command": command_text,
            "new": new_task_count,
            "reused": sum(len(r.reuse) for _, r in results),
        },
    )
    described = describe_plan(*(r for _, r in results))
    by_push = any(part is not push for part, _ in results)
    if by_push:
        count = len(results)
        described += f" on the {count} push{'es' if count != 1 else ''} before it"
    header = f"[{request_id}] {headline} on {push.describe()}: {described}"
    below = f"\n{note}" if note else ""
    if project.mode == Mode.ACTION and not by_push:
        action = "retrigger-multiple" if isinstance(command, Retrigger) else "add-new-jobs"
        below += f"\n(the push's {action} action creates them: {len(labels)} job(s), times={times})"
    if dry_run:
        shown = preview(header + below, tasks, by_push=by_push)
        await ctx.reply(shown + "\n(dry run: nothing was scheduled)")
        return request_id
    if state == RequestState.AWAITING_CONFIRMATION:
        why = unsure or TOO_BIG.format(threshold=threshold, besides=besides)
        held = HELD.format(
            header=header, why=why, request=request_id, minutes=bot.settings.confirm_minutes
        )
        await ctx.reply(preview(held + below, tasks, by_push=by_push))
        ctx.budget.tasks += new_task_count  # it may be confirmed: it counts
        return request_id
    ctx.budget.tasks += new_task_count
    record = await bot.store.request(request_id)
    assert record is not None
    # a backfill's card keeps its notes (pushes skipped, the job as pushed) above its lines
    await submitter.submit(bot, ctx.replier, record, header + below if by_push else header)
    after = await bot.store.request(request_id)
    if after is not None and after.state == RequestState.FAILED:
        ctx.refused = True  # it said why (tasks that could not be created, a failed hook)
    return request_id


async def plan_on(bot: Runtime, push: Push, labels: list[str], key: str, times: int) -> Plan:
    """``times`` copies of ``labels`` planned on ``push`` (their taskIds derived from ``key``),
    reusing what it built and what the Index holds; ``GraphError`` when they cannot be."""
    existing = await with_indexed_copies(bot, push, labels)
    # Off the event loop: a huge command must not hold up webhooks and health checks.
    return await asyncio.to_thread(plan, push.graph, labels, existing, request_id=key, times=times)


async def materialized(
    bot: Runtime, request_id: str, requested_by: str, results: list[tuple[Push, Plan]]
) -> tuple[list[NewTask], list[PlannedTask]]:
    """The task definitions of planned jobs, each on its own push, marked with who asked
    for them and for which push; and the same as the store keeps a plan."""
    tasks: list[NewTask] = []
    planned_tasks: list[PlannedTask] = []
    for part, result in results:
        longest = bot.settings.project(part.project).max_deadline_days
        materializer = Materializer(
            part.graph,
            decision_task_id=part.decision_task_id,
            scheduler_id=await bot.decisions.scheduler_of(part.decision_task_id),
            root_url=bot.clients.queue.options["rootUrl"],
            max_deadline=dt.timedelta(days=longest) if longest else None,
        )
        made = await asyncio.to_thread(materializer.definitions, result, dt.datetime.now(dt.UTC))
        asked = set(result.requested)
        for task in made:  # who asked, and for which push, for whoever looks at it
            extra = task.definition.setdefault("extra", {})
            extra["taskbot"] = {
                "request": request_id,
                "requestedBy": requested_by,
                "revision": part.revision,
            }
            planned_tasks.append(
                PlannedTask(
                    task.task_id,
                    task.label,
                    task.copy,
                    len(planned_tasks),
                    task.definition,
                    requested=task.label in asked,
                )
            )
        tasks += made
    return tasks, planned_tasks


# A job found in the Index must last at least this long to be reused (the new tasks'
# usual deadline): one that expires sooner would vanish under the tasks depending on it.
INDEXED_FOR = dt.timedelta(days=1)
MAX_INDEX_LOOKUPS = 200


async def with_indexed_copies(bot: Runtime, push: Push, labels: list[str]) -> dict[str, str]:
    """What the push built, plus the jobs of the closure whose ``index-search`` paths name
    a usable indexed task (taskgraph's optimizer reuses those rather than rebuild them)."""
    candidates = await asyncio.to_thread(cached_elsewhere, push.graph, labels, push.existing)
    if not candidates:
        return push.existing
    if len(candidates) > MAX_INDEX_LOOKUPS:
        log.info(
            "%d index-search jobs; looking up the first %d", len(candidates), MAX_INDEX_LOOKUPS
        )
        candidates = dict(list(candidates.items())[:MAX_INDEX_LOOKUPS])
    usable_until = dt.datetime.now(dt.UTC) + INDEXED_FOR
    found = await bot.decisions.indexed_copies(candidates, usable_until=usable_until)
    return {**push.existing, **found}


def preview(header: str, tasks: list[NewTask], *, by_push: bool = False) -> str:
    lines = [header]
    for task in tasks[:SHOWN]:
        where = f"{revision_of_task(task.definition)[:12]}: " if by_push else ""
        copy = f" (copy {task.copy + 1})" if task.copy else ""
        lines.append(f"  + {where}{task.label}{copy}")
    if len(tasks) > SHOWN:
        lines.append(f"  … and {len(tasks) - SHOWN} more")
    return "\n".join(lines)


async def carry_on(ctx: Context, record: RequestRecord) -> str:
    """The same command again after an earlier attempt stopped partway (a replica died):
    go on from where the store says it got to, with the plan it saved; never plan anew."""
    bot = ctx.bot
    if not await bot.hold(record.id):
        await ctx.reply(BUSY.format(request=record.id))
        return record.id
    if record.state in (RequestState.RECEIVED, RequestState.PLANNED):  # planned, not submitted
        await bot.store.set_state(record.id, RequestState.SUBMITTING)
        record = replace(record, state=RequestState.SUBMITTING)
    if record.state == RequestState.SUBMITTING:
        log.warning("carrying on with %s where an earlier attempt stopped", record.id)
        await submit_request(bot, ctx.replier, record.id, resumed=True)
    elif record.state == RequestState.SUBMITTED:
        # say where it stands now (the card), then follow it as the first attempt would
        await card_again(bot, ctx.replier, record, None)
        bot.spawn(track(bot, ctx.replier, record.id))
    else:
        await ctx.reply(f"[{record.id}] was handled already: {record.state.words}.")
    return record.id
