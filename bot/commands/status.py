"""``status``: where a request, a push, or your recent requests stand."""

from __future__ import annotations

import logging
from collections import Counter

from bot.bisecting import is_round, load
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.reporting import FINISHED, ending_of
from bot.scheduling import expanded, named_project
from bot.store import PlannedTask, RequestRecord, RequestState
from bot.tc.decision import DecisionNotFoundError
from grammar import Revision, Status

log = logging.getLogger(__name__)
SHOWN = 5
SEARCH_LINES = 30  # of a culprit search's card, the last ones
NOT_YOURS = (
    "{request} was asked for somewhere you cannot see from here; ask about it where it was "
    "asked for."
)


async def status(ctx: Context, cmd: Status) -> None:
    """status [REQUEST-ID|REVISION]
    Shows a request's tasks, the bot's requests on a push, or the requests here: in a shared
    place (a pull request, a channel) all of its requests, elsewhere yours."""
    bot = ctx.bot
    if cmd.request_id is not None:
        record = await bot.store.request(cmd.request_id.text)
        if record is None:
            await ctx.refuse(f"There is no request {cmd.request_id.text}.")
            return
        if not await ctx.adapter.may_see(ctx.request, record):
            await ctx.refuse(NOT_YOURS.format(request=record.id))
            return
        await ctx.reply(await describe(ctx, record, detail=True))
        return
    if cmd.revision is not None:
        push = await _push(ctx, cmd.revision)
        if push is None:
            return
        project, revision = push
        records = [
            r
            for r in await bot.store.recent_requests(limit=200)
            if r.revision == revision and r.project == project
        ]
        records = [r for r in records if await ctx.adapter.may_see(ctx.request, r)]
        if not records:
            await ctx.reply(f"The bot scheduled nothing on {project}@{revision[:12]}.")
            return
        await ctx.reply("\n".join([await describe(ctx, r) for r in records[:SHOWN]]))
        return
    if ctx.adapter.shared(ctx.request):
        recent = await bot.store.recent_requests(limit=200)
        records = [r for r in recent if r.source == ctx.request.source]
        records = [r for r in records if r.place == ctx.request.place]
    else:
        records = await bot.store.recent_requests(limit=200, actor=ctx.request.actor)
        records = [r for r in records if await ctx.adapter.may_see(ctx.request, r)]
    records = [r for r in records if not is_round(r)]  # a search's rounds are in its lines
    if not records:
        await ctx.reply("No requests yet.")
        return
    await ctx.reply("\n".join([await describe(ctx, r) for r in records[:SHOWN]]))


async def _push(ctx: Context, revision: Revision) -> tuple[str, str] | None:
    """The project and full revision a `status` names (a short one, `latest`, or
    `project@rev`), or None after saying why there is none."""
    bot = ctx.bot
    project = named_project(ctx, revision)
    if revision.node is not None:
        node = await expanded(ctx, project, revision.node)
        return (project, node) if node is not None else None
    try:
        decision = await bot.decisions.find(project, None, bot.settings.project(project).routes)
    except DecisionNotFoundError as error:
        await ctx.refuse(str(error))
        return None
    latest = await bot.decisions.revision_of(decision)
    if latest is None:
        await ctx.refuse(f"The latest push of {project} does not say its revision.")
        return None
    return project, latest


FRESHENED = 50  # tasks of an unfollowed request asked of the Queue at most, per status


async def describe(ctx: Context, record: RequestRecord, *, detail: bool = False) -> str:
    """A line for the request; with ``detail``, a line per push of a backfill and its
    failed jobs with their links (as its final reply names them); a culprit search's
    with its card's lines."""
    search = await load(ctx.bot, record.id)
    if search is not None:
        line = f"[{record.id}] {record.command}: {record.state.words}"
        if record.error and record.state != RequestState.SEARCHING:
            line += f": {record.error[:300]}"
        shown = search.lines[-SEARCH_LINES:] if detail else []
        return "\n".join([line, *(f"  {each}" for each in shown)])
    tasks = await freshened(ctx, record)
    states = Counter(t.state or ("unsubmitted" if not t.submitted else "pending") for t in tasks)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    line = f"[{record.id}] {record.command or record.text}: {record.state.words}" + (
        f" ({counts})" if tasks else ""
    )
    if record.state == RequestState.FAILED and record.error:
        line += f": {record.error[:300]}"
    if not detail or not tasks or record.state not in REPORTED:
        return line
    stored = {t.task_id: t for t in tasks}
    known = {t.task_id: t.state for t in tasks if t.state}
    ending = await ending_of(ctx.bot, record, stored, known)
    return "\n".join([line, *(f"  {each}" for each in ending.plain())])


async def freshened(ctx: Context, record: RequestRecord) -> list[PlannedTask]:
    """The request's tasks; those nobody follows any more (a request that failed or was
    cancelled while its tasks ran) with their states asked of the Queue, and stored."""
    bot = ctx.bot
    tasks = await bot.store.plan(record.id)
    if record.id in bot.following or record.state not in STILL_RUNNING_AFTER:
        return tasks
    unresolved = [t for t in tasks if t.submitted and t.state not in FINISHED][:FRESHENED]
    for task in unresolved:
        try:
            state = str((await bot.clients.queue.status(task.task_id))["status"]["state"])
        except Exception as error:  # best effort: the stored state stands
            log.info("the state of %s is unknown: %s", task.task_id, error)
            continue
        await bot.store.set_task_state(task.task_id, state)
    return await bot.store.plan(record.id) if unresolved else tasks


# Requests whose tasks were created, so their results mean something.
REPORTED = (
    RequestState.SUBMITTED,
    RequestState.FINISHED,
    RequestState.FAILED,
    RequestState.CANCELLED,
    RequestState.LOST,
)
# Requests nobody follows although their tasks may still run.
STILL_RUNNING_AFTER = (RequestState.FAILED, RequestState.CANCELLED, RequestState.LOST)


COMMAND = Command(
    "status",
    status,
    Level.READ,
    examples=("status r7f3a", "status", "status autoland@abc123f"),
)
