"""``pushes``: a project's latest pushes in order, newest first, with their links."""

from __future__ import annotations

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.reporting import group_url, treeherder_url
from bot.scheduling import find_decision
from bot.tc.pushes import NoPushlogError, PushInfo, earlier_pushes, push_info
from grammar import Pushes

HEADER = "{count} push{es} of {project}{upto}, newest first:"
NO_PUSHLOG = (
    "The pushes of {project} have no pushlog ids, nor is this a push to a branch that says "
    "which head came before it (a pull request's push), so I cannot tell which came before "
    "which."
)
STOPPED = (
    "… stopped at {revision}: the branch's head before the last push listed, which no "
    "decision task ran for (what came before it is unknown)."
)
GAVE_UP = (
    "… stopped looking: pushlog ids {low} to {high} have no decision task indexed (pushes "
    "before them may have; ask `pushes N on {project}@REVISION` of an older one)."
)


async def pushes(ctx: Context, cmd: Pushes) -> None:
    """pushes [N] [on PROJECT|REVISION]
    Lists a project's latest pushes (or the pushes up to one), newest first: pushlog id,
    revision, who pushed, and where its tasks are."""
    bot = ctx.bot
    # The project's latest pushes, whatever push the place is about, unless one is named.
    named = await find_decision(ctx, cmd.revision, place_revision=False)
    if named is None:
        return
    project, node = named.project, named.revision
    routes = bot.settings.project(project).routes
    try:
        newest = await push_info(bot.decisions, named.decision_task_id)
    except NoPushlogError:
        await ctx.refuse(NO_PUSHLOG.format(project=project))
        return
    earlier = await earlier_pushes(bot.decisions, project, routes, newest, cmd.count - 1)
    found = [newest, *earlier.pushes]
    upto = f" up to {newest.revision[:12]}" if node is not None else ""
    count = len(found)
    lines = [HEADER.format(count=count, es="" if count == 1 else "es", project=project, upto=upto)]
    lines += [_line(ctx, project, push) for push in found]
    if earlier.gave_up_at is not None:
        high = found[-1].pushlog_id - 1
        lines.append(GAVE_UP.format(low=earlier.gave_up_at, high=high, project=project))
    if earlier.stopped_at is not None:
        lines.append(STOPPED.format(revision=earlier.stopped_at[:12]))
    await ctx.reply("\n".join(lines))


def _line(ctx: Context, project: str, push: PushInfo) -> str:
    who = f" by {push.owner}" if push.owner else ""
    group = group_url(ctx.bot, push.decision_task_id)
    place = f"#{push.pushlog_id} " if push.pushlog_id else ""  # a git branch's: no pushlog
    line = f"  {place}{push.revision[:12]}{who}: {group}"
    treeherder = treeherder_url(ctx.bot, project, push.revision)
    if treeherder:
        line += f" {treeherder}"
    return line


COMMAND = Command(
    "pushes",
    pushes,
    Level.READ,
    examples=("pushes", "pushes 5 on autoland"),
)
