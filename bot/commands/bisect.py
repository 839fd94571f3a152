"""``bisect``: find the first push where a job started failing, in log₂ rounds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.bisecting import PushRef, SearchState, card_of, run_search, save, show
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.culprit.search import most_rounds
from bot.graph import ResolveError, Resolver
from bot.scheduling import Push, find_push, place_in_order
from bot.store import RequestState
from bot.tc.evidence import runs_of
from bot.tc.pushes import PushInfo, earlier_pushes
from grammar import Bisect

ONE_JOB = "`{job}` names {count} jobs on {push} ({some}); a search follows one: name it."
NEVER_FAILED = (
    "`{label}` failed on none of the {count} latest pushes of {project}, so there is no "
    "break to look for; name the push it fails on with `on REVISION`."
)
TOO_FEW = "There is no push before {push} with a decision task, so there is nothing to search."
GOOD_NOT_FOUND = "{good} is not among the {count} pushes before {push}{more}."
RAISE_MAX = ": raise `max P pushes` (now {limit}) or name a nearer push with `from`"
NO_MORE = ", and no push before them could be found"
OTHER_PROJECT = "`from {good}` names another project's push; a search stays on {project}."
GAVE_UP = (
    "(no push older than pushlog id {low} was looked for: {gap} in a row had no decision task)"
)
STOPPED = "(no push older than {revision} could be found: no decision task ran for it)"
GOOD_NOT_BEFORE = "{good} must be a push before {push}, where the job still passed."
ALREADY = "[{request}] is {state} already: `status {request}` shows where it stands."
HELD = (
    "{header} — held: up to {tasks} tasks over up to {rounds} rounds when runs agree (never "
    "more than {cap}) is more than {threshold}. To go ahead: `confirm {request}` within "
    "{minutes} minutes."
)
DRY_RUN = (
    "{header}\n  up to {rounds} rounds and {tasks} tasks when runs agree, never more than {cap} "
    "(a backfill of them all x{copies}: {linear})\n(dry run: nothing was scheduled)"
)
TOO_MUCH = (
    "A search may create up to {tasks} tasks, and this message has asked for {so_far} already; "
    "one message may create at most {cap}."
)
TOO_MANY_SEARCHES = (
    "You have {count} searches running ({ids}); wait for one to end, or `cancel` one, first."
)
MAX_SEARCHES = 3  # culprit searches one person may have running at once
LOOK_BACK = 10  # pushes looked at for the latest one the job failed on, when none is named
MAX_COPIES = 12  # runs of one push before disagreeing runs are judged by their rate


async def bisect(ctx: Context, cmd: Bisect) -> None:
    """bisect JOB [on BAD] [from GOOD] [xN] [max P pushes] [--dry-run]
    Finds the first push where JOB fails: it runs the job (N times, 3 by default) on the
    push halfway between one where it passes and one where it fails, waits, and halves
    again: log₂ rounds, not a backfill of every push. BAD: where it fails (default: the
    latest push it failed on); GOOD: where it passes (default: the oldest of the P pushes
    before BAD, the project's `bisect_pushes`, 32). What the pushes ran already counts
    first; disagreeing runs get more copies. One card, a line per round; `cancel ID`
    stops it."""
    bot = ctx.bot
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    label = await _one_label(ctx, cmd, push)
    if label is None:
        return
    start = await place_in_order(ctx, push, "bisect")
    if start is None:
        return
    project = bot.settings.project(push.project)
    limit = cmd.max_pushes or project.bisect_pushes
    # `on PROJECT` (its latest push) names no push: the latest the job failed on is meant
    named = (cmd.revision is not None and cmd.revision.node is not None) or (
        cmd.revision is None and ctx.request.revision is not None
    )
    if not named:
        found = await _latest_failing(ctx, push, start, label)
        if found is None:
            return
        start = found
    # one push more than the range holds: whether any is older than its oldest
    earlier = await earlier_pushes(bot.decisions, push.project, project.routes, start, limit)
    walked_all = len(earlier.pushes) == limit  # False: no push older than the range's oldest
    pushes = earlier.pushes[: limit - 1]
    notes = []
    if earlier.gave_up_at is not None and pushes and not walked_all:
        gap = earlier.pushes[-1].pushlog_id - earlier.gave_up_at
        notes.append(GAVE_UP.format(low=earlier.gave_up_at, gap=gap))
    if earlier.stopped_at is not None and not walked_all:
        notes.append(STOPPED.format(revision=earlier.stopped_at[:12]))
    if cmd.good is not None and cmd.good.project not in (None, push.project):
        await ctx.refuse(OTHER_PROJECT.format(good=cmd.good.canonical(), project=push.project))
        return
    if cmd.good is not None:
        # the good push is one of those walked back over: known by its first digits
        node = (cmd.good.node or "").lower()
        if not node or start.revision.startswith(node):
            said = node[:12] or "the latest push"
            await ctx.refuse(GOOD_NOT_BEFORE.format(good=said, push=push.describe()))
            return
        places = [i for i, info in enumerate(pushes) if info.revision.startswith(node)]
        if not places:
            where = {"count": len(pushes), "push": push.describe()}
            more = RAISE_MAX.format(limit=limit) if walked_all else NO_MORE
            await ctx.refuse(GOOD_NOT_FOUND.format(good=node[:12], more=more, **where))
            return
        pushes = pushes[: places[0] + 1]
    if not pushes:
        await ctx.refuse(TOO_FEW.format(push=push.describe()))
        return
    refs = [_ref(info) for info in [*reversed(pushes), start]]
    named_good = 0 if cmd.good is not None else None
    await _begin(ctx, cmd, Span(push.project, label, refs, named_good, notes, walked_all))


async def _one_label(ctx: Context, cmd: Bisect, push: Push) -> str | None:
    resolver = Resolver(push.graph, cmd.filters, shortlist_limit=ctx.bot.settings.shortlist_limit)
    try:
        labels = list((await asyncio.to_thread(resolver.resolve, cmd.selectors)).labels)
    except ResolveError as error:
        await ctx.refuse(str(error))
        return None
    if len(labels) != 1:
        job = " ".join(s.canonical() for s in cmd.selectors)
        some = ", ".join(f"`{label}`" for label in labels[:3]) + (", …" if len(labels) > 3 else "")
        await ctx.refuse(
            ONE_JOB.format(job=job, count=len(labels), push=push.describe(), some=some)
        )
        return None
    return labels[0]


async def _latest_failing(ctx: Context, push: Push, start: PushInfo, label: str) -> PushInfo | None:
    """The newest push, from ``start`` back, where the job ran and failed."""
    bot = ctx.bot
    routes = bot.settings.project(push.project).routes
    earlier = await earlier_pushes(bot.decisions, push.project, routes, start, LOOK_BACK - 1)
    candidates = [start, *earlier.pushes]
    for info in candidates:
        if (await runs_of(bot.clients.queue, info.decision_task_id, label)).failed:
            return info
    await ctx.refuse(NEVER_FAILED.format(label=label, count=len(candidates), project=push.project))
    return None


def _ref(info: PushInfo) -> PushRef:
    return PushRef(info.pushlog_id, info.revision, info.decision_task_id, info.owner)


@dataclass(frozen=True, slots=True)
class Span:
    """What a search covers: the job, its pushes (oldest first), which one passes if one was
    named, and what the walk back over them found."""

    project: str
    label: str
    refs: list[PushRef]
    good: int | None
    notes: list[str]
    walked_all: bool  # False: no push older than the oldest could be found


async def _begin(ctx: Context, cmd: Bisect, span: Span) -> None:
    bot = ctx.bot
    request_id = await bot.request_id_for(ctx.request, ctx.key)
    ctx.made.append(request_id)
    # two deliveries of one message at once make one search, with one card
    async with bot.exclusive(request_id):
        await _create(ctx, cmd, span, request_id)


async def _create(ctx: Context, cmd: Bisect, span: Span, request_id: str) -> None:
    bot = ctx.bot
    project_name, label, refs, good = span.project, span.label, span.refs, span.good
    project = bot.settings.project(project_name)
    earlier = await bot.store.request(request_id)
    if earlier is not None:
        if earlier.state == RequestState.SEARCHING and request_id not in bot.following:
            bot.spawn(run_search(bot, ctx.replier, request_id))
        await ctx.reply(ALREADY.format(request=request_id, state=earlier.state.words))
        return
    rounds = most_rounds(len(refs))
    most = min(2 * cmd.copies + (rounds - 1) * cmd.copies, project.bisect_tasks)
    cap = project.max_new_tasks or bot.settings.max_new_tasks
    if ctx.budget.tasks + most > cap:  # the message's cap counts a search's worst case
        await ctx.refuse(TOO_MUCH.format(tasks=most, so_far=ctx.budget.tasks, cap=cap))
        return
    mine = [
        r.id
        for r in await bot.store.requests_in(RequestState.SEARCHING)
        if (r.source, r.actor) == (ctx.request.source, ctx.request.actor)
    ]
    if len(mine) >= MAX_SEARCHES and not cmd.dry_run:
        await ctx.refuse(TOO_MANY_SEARCHES.format(count=len(mine), ids=", ".join(mine)))
        return
    linear = cmd.copies * (len(refs) - 1)
    oldest, bad = refs[0], refs[-1]
    header = (
        f"[{request_id}] bisect {label} on {project_name}: {len(refs)} pushes, "
        f"{oldest.name()} ({'passes' if good is not None else 'oldest'}) … {bad.name()} "
        f"(fails), x{cmd.copies} per push"
    )
    threshold = project.confirm_threshold or bot.settings.confirm_threshold
    held = most > threshold
    state = SearchState(
        project=project_name,
        label=label,
        pushes=refs,
        copies=cmd.copies,
        max_copies=max(MAX_COPIES, 2 * cmd.copies),
        good=good,
        # unconfirmed, a search never goes past the threshold, however its runs disagree
        task_cap=project.bisect_tasks if held else min(project.bisect_tasks, threshold),
        header=header,
        lines=list(span.notes),
        walked_all=span.walked_all,
    )
    await bot.store.add_request(
        request_id,
        source=ctx.request.source,
        actor=ctx.request.actor,
        place=ctx.request.place,
        text=ctx.line,
        command=cmd.canonical(),
        project=project_name,
        revision=bad.revision,
        decision_task_id=bad.decision,
    )
    await save(bot, request_id, state)
    worst = {"rounds": rounds, "tasks": most, "cap": state.task_cap}
    if cmd.dry_run:
        await bot.store.set_state(request_id, RequestState.PREVIEWED)
        await ctx.reply(DRY_RUN.format(header=header, copies=cmd.copies, linear=linear, **worst))
        return
    ctx.budget.tasks += most
    if held:
        await bot.store.set_state(request_id, RequestState.AWAITING_CONFIRMATION)
        minutes = bot.settings.confirm_minutes
        await ctx.reply(
            HELD.format(
                header=header, threshold=threshold, request=request_id, minutes=minutes, **worst
            )
        )
        return
    await start_search(ctx, request_id, state)


async def start_search(ctx: Context, request_id: str, state: SearchState) -> None:
    """Post the search's card and run it in the background (it outlives the command)."""
    bot = ctx.bot
    await bot.store.set_state(request_id, RequestState.SEARCHING)
    record = await bot.store.request(request_id)
    assert record is not None
    await bot.store.audit(
        actor=ctx.request.actor,
        source=ctx.request.source,
        place=ctx.request.place,
        action="bisect",
        request_id=request_id,
        detail={"label": state.label, "pushes": len(state.pushes), "copies": state.copies},
    )
    await show(bot, ctx.replier, record, state, [card_of(request_id, state)])
    bot.spawn(run_search(bot, ctx.replier, request_id))


COMMAND = Command(
    "bisect",
    bisect,
    Level.WRITE,
    gated=True,
    examples=(
        "bisect M(bc3)",
        "bisect mochitest-1 on autoland@abc123f max 16 pushes x2",
    ),
)
