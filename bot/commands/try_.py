"""``try:``: schedule the jobs Gecko's try option syntax selects."""

from __future__ import annotations

import asyncio

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, select_try
from bot.scheduling import find_push, schedule_labels
from grammar import Try

NO_TESTS = (
    "That selects no test on this push, only {builds} build or other jobs, so nothing was "
    "scheduled. Check the test names (`jobs NAME` searches the push); for the builds alone, "
    "say `-u none`."
)


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
    options = cmd.options
    asked_tests = any(s != () for s in (options.unittests, options.talos, options.raptor))
    tests = [x for x in labels if push.graph.entries[push.graph.position[x]].kind == "test"]
    if asked_tests and labels and not tests:
        await ctx.refuse(NO_TESTS.format(builds=len(labels)))
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
