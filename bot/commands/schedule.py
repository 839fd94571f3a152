"""``schedule``: add jobs, with the dependencies they need, to a push."""

from __future__ import annotations

import asyncio

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, Resolver
from bot.scheduling import find_push, schedule_labels
from grammar import Schedule


async def schedule(ctx: Context, cmd: Schedule) -> None:
    """schedule JOBS [on REVISION] [for PLATFORMS] [xN] [--dry-run]
    Adds the jobs to the push with the dependencies they need, reusing what already ran.
    JOBS: labels, symbols like M(bc3), suites like mochitest-1, globs, or a quoted fzf query."""
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    resolver = Resolver(push.graph, cmd.filters, shortlist_limit=ctx.bot.settings.shortlist_limit)
    try:
        labels = list((await asyncio.to_thread(resolver.resolve, cmd.selectors)).labels)
    except ResolveError as error:
        await ctx.refuse(str(error))
        return
    await schedule_labels(ctx, push, labels, times=cmd.times, dry_run=cmd.dry_run, command=cmd)


COMMAND = Command(
    "schedule",
    schedule,
    Level.WRITE,
    gated=True,
    examples=(
        "schedule mochitest-browser-chrome-3 for linux64 debug",
        "schedule M(bc3) R(R4) on autoland@abc123f x3",
        "schedule 'mochitest !asan' for windows11-64 --dry-run",
    ),
)
