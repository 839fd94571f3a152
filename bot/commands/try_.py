"""``try:``: schedule the jobs Gecko's try option syntax selects."""

from __future__ import annotations

import asyncio

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, select_try
from bot.scheduling import find_push, schedule_labels
from grammar import Try


async def try_syntax(ctx: Context, cmd: Try) -> None:
    """try: -b o|d|do -p PLATFORMS -u TESTS [-t TALOS] [--rebuild N] [on REVISION]
    Schedules what Gecko's try option syntax selects on the push, by Gecko's rules."""
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    try:
        labels = await asyncio.to_thread(select_try, push.graph, cmd.options)
    except ResolveError as error:
        await ctx.refuse(str(error))
        return
    await schedule_labels(
        ctx,
        push,
        labels,
        times=cmd.options.rebuild,
        dry_run=cmd.dry_run,
        command=cmd,
    )


COMMAND = Command(
    "try",
    try_syntax,
    Level.WRITE,
    gated=True,
    examples=("try: -b do -p linux64 -u mochitest-1", "try: -b o -p all -u none"),
)
