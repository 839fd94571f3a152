"""``more``: the next page of a long reply held back on IRC."""

from __future__ import annotations

from bot.commands import command
from bot.service import Context
from grammar import More

NOTHING_HELD = "Nothing more to show."


@command("more", examples=("more",))
async def more(ctx: Context, cmd: More) -> None:
    """more
    Shows the next lines of a long reply (IRC sends a few lines at a time)."""
    next_page = getattr(ctx.replier, "more", None)
    if next_page is None or not await next_page():
        await ctx.reply(NOTHING_HELD)
