"""``jobs``: search the jobs a push can run."""

from __future__ import annotations

import asyncio

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, Resolver
from bot.scheduling import find_push
from grammar import Glob, Jobs, Query

SHOWN = 20


async def jobs(ctx: Context, cmd: Jobs) -> None:
    """jobs [QUERY] [on REVISION] [for PLATFORMS]
    Lists the jobs of the push that match an fzf-style query (and the platform filters)."""
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    selector = Query(cmd.query) if cmd.query else Glob("*")
    try:
        resolver = Resolver(push.graph, cmd.filters, shortlist_limit=10**9)
        labels = (await asyncio.to_thread(resolver.resolve, [selector])).labels
    except ResolveError as error:
        await ctx.refuse(str(error))
        return
    lines = [f"{len(labels)} job{'s' if len(labels) != 1 else ''} on {push.describe()}:"]
    for label in labels[:SHOWN]:
        symbol = push.graph.symbols[push.graph.position[label]]
        lines.append(f"  {label}" + (f"  [{symbol}]" if symbol else ""))
    if len(labels) > SHOWN:
        lines.append(f"  … and {len(labels) - SHOWN} more; narrow the query")
    await ctx.reply("\n".join(lines))


COMMAND = Command(
    "jobs",
    jobs,
    Level.READ,
    examples=("jobs mochitest !asan for linux64", "jobs 'xpcshell' on autoland@abc123f"),
)
