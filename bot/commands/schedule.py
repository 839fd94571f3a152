"""``schedule``: add jobs, with the dependencies they need, to a push."""

from __future__ import annotations

import asyncio

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, Resolver, by_suite
from bot.scheduling import find_push, schedule_labels
from grammar import Schedule

SUITES_SHOWN = 8
LOOSE = (
    "{count} of the jobs match the query only as letters in order, not as written (like "
    "`{example}`); quote a word with ' inside the query for an exact match"
)


async def schedule(ctx: Context, cmd: Schedule) -> None:
    """schedule JOBS [on REVISION] [for PLATFORMS] [xN] [--dry-run]
    Adds the jobs to the push with the dependencies they need, reusing what already ran.
    JOBS: labels, symbols like M(bc3), suites like mochitest-1, globs, or a quoted fzf query."""
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    resolver = Resolver(push.graph, cmd.filters, shortlist_limit=ctx.bot.settings.shortlist_limit)
    try:
        found = await asyncio.to_thread(resolver.resolve, cmd.selectors)
    except ResolveError as error:
        await ctx.refuse(str(error))
        return
    labels = list(found.labels)
    note = unsure = None
    if found.queried:  # a query: say what it matched, by suite, before anything runs
        suites = by_suite(push.graph, labels)
        shown = ", ".join(f"{name} ×{count}" for name, count in suites[:SUITES_SHOWN])
        more = (
            f" and {len(suites) - SUITES_SHOWN} more suites" if len(suites) > SUITES_SHOWN else ""
        )
        note = f"  matched by suite: {shown}{more}"
        if found.loose:
            unsure = LOOSE.format(count=len(found.loose), example=found.loose[0])
    await schedule_labels(
        ctx,
        push,
        labels,
        times=cmd.times,
        dry_run=cmd.dry_run,
        command=cmd,
        note=note,
        unsure=unsure,
    )


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
