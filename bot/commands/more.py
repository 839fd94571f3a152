"""``more``: the next page of a long reply held back on IRC."""

from __future__ import annotations

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.core.replies import Pages
from grammar import More

NOTHING_HELD = "Nothing more to show."


async def more(ctx: Context, cmd: More) -> None:
    """more
    Shows the next lines of a long reply (IRC sends a few lines at a time)."""
    if not isinstance(ctx.replier, Pages) or not await ctx.replier.more():
        await ctx.reply(NOTHING_HELD)


COMMAND = Command(
    "more",
    more,
    Level.READ,
    examples=("more",),
    needs=Pages,
)
