"""``backfill``: run a job on the pushes before one, to see where it started failing."""

from __future__ import annotations

import asyncio
import contextlib

from bot.commands.action import run_push_action, task_target
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.core.settings import Mode
from bot.graph import GraphError, ResolveError, Resolver
from bot.scheduling import Push, find_push, load_push, place_in_order, schedule_labels
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.pushes import earlier_pushes
from grammar import Backfill

NO_EARLIER = "There is no push before {push} with a decision task, so there is nothing to backfill."
GAVE_UP = "  (stopped looking at pushlog id {low}: {gap} pushes in a row had no decision task)"
STOPPED = "  (stopped at {revision}: no decision task ran for it, so what came before is unknown)"
SKIPPED = "  {place}{revision}: skipped, {why}"
NOT_THERE = "no `{label}` in its task graph"
UNREADABLE = "its task graph could not be read ({error})"
AS_PUSHED = "  {place}{revision} (this push): {label} {state} as pushed"
NOWHERE = "`{label}` is in none of the {count} pushes before {push}, so nothing was scheduled."
ONE_ACTION_JOB = (
    "In action mode backfill goes through the push's own `backfill` action, which takes one "
    "job; `{job}` names {count}: name one."
)
NOT_RUN = (
    "`{label}` has no task on {push}, and the push's `backfill` action acts on one of its "
    "tasks: `schedule {label}` there first."
)


async def backfill(ctx: Context, cmd: Backfill) -> None:
    """backfill JOB [on REVISION] [depth N] [for PLATFORMS] [xN] [--dry-run]
    Runs the job on the N pushes before REVISION (5 by default), each against its own push's
    task graph, reusing what that push built; one card, a line per push: where the job
    started failing shows as the line between passing and failing pushes. `--notify`: you
    are told when it ends (`help notify`)."""
    bot = ctx.bot
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    resolver = Resolver(push.graph, cmd.filters, shortlist_limit=bot.settings.shortlist_limit)
    try:
        labels = list((await asyncio.to_thread(resolver.resolve, cmd.selectors)).labels)
    except ResolveError as error:
        await ctx.refuse(str(error))
        return
    if bot.settings.project(push.project).mode == Mode.ACTION:
        await _by_action(ctx, cmd, push, labels)
        return
    start = await place_in_order(ctx, push, "backfill")
    if start is None:
        return
    routes = bot.settings.project(push.project).routes
    earlier = await earlier_pushes(bot.decisions, push.project, routes, start, cmd.depth)
    if not earlier.pushes:
        await ctx.refuse(NO_EARLIER.format(push=push.describe()))
        return
    notes = [await _as_pushed(ctx, push, start.pushlog_id, labels)]
    parts: list[tuple[Push, list[str]]] = []
    for info in earlier.pushes:
        revision = info.revision[:12]
        try:
            part = await load_push(ctx.bot, push.project, info.revision, info.decision_task_id)
        except (ArtifactError, GraphError, DecisionNotFoundError) as error:
            why = UNREADABLE.format(error=str(error)[:200])
            notes.append(SKIPPED.format(place=_place(info.pushlog_id), revision=revision, why=why))
            continue
        wanted = [label for label in labels if label in part.graph]
        if not wanted:
            why = NOT_THERE.format(label=labels[0])
            notes.append(SKIPPED.format(place=_place(info.pushlog_id), revision=revision, why=why))
            continue
        parts.append((part, wanted))
    if earlier.gave_up_at is not None:
        gap = earlier.pushes[-1].pushlog_id - earlier.gave_up_at
        notes.append(GAVE_UP.format(low=earlier.gave_up_at, gap=gap))
    if earlier.stopped_at is not None:
        notes.append(STOPPED.format(revision=earlier.stopped_at[:12]))
    if not parts:
        count = len(earlier.pushes)
        await ctx.refuse(
            "\n".join([NOWHERE.format(label=labels[0], count=count, push=push.describe()), *notes])
        )
        return
    await schedule_labels(
        ctx,
        push,
        labels,
        times=cmd.times,
        dry_run=cmd.dry_run,
        command=cmd,
        note="\n".join(line for line in notes if line),
        elsewhere=parts,
    )


async def _as_pushed(ctx: Context, push: Push, pushlog_id: int, labels: list[str]) -> str:
    """How the job ended on the push itself, as the line the backfill's lines go under."""
    if len(labels) != 1:
        return ""
    task_id = push.existing.get(labels[0])
    state = "did not run"
    if task_id is not None:
        with contextlib.suppress(Exception):  # a line of context, not worth failing over
            state = str((await ctx.bot.clients.queue.status(task_id))["status"]["state"])
    revision = (push.revision or "")[:12]
    place = _place(pushlog_id)
    return AS_PUSHED.format(place=place, revision=revision, label=labels[0], state=state)


def _place(pushlog_id: int) -> str:
    """``#41 `` for a push of a pushlog; nothing for a git branch's push."""
    return f"#{pushlog_id} " if pushlog_id else ""


async def _by_action(ctx: Context, cmd: Backfill, push: Push, labels: list[str]) -> None:
    """Action mode: the push's own ``backfill`` action, on the job's task of the push."""
    if len(labels) != 1:
        job = " ".join(s.canonical() for s in cmd.selectors)
        await ctx.refuse(ONE_ACTION_JOB.format(job=job, count=len(labels)))
        return
    task_id = push.existing.get(labels[0])
    if task_id is None:
        await ctx.refuse(NOT_RUN.format(label=labels[0], push=push.describe()))
        return
    target = await task_target(ctx, task_id)
    if target is None:
        return
    given = {"depth": cmd.depth, "times": cmd.times}
    await run_push_action(ctx, target, "backfill", given, command=cmd)


COMMAND = Command(
    "backfill",
    backfill,
    Level.WRITE,
    gated=True,
    examples=(
        "backfill M(bc3)",
        "backfill mochitest-1 on autoland@abc123f depth 3 x2",
    ),
)
