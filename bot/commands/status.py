"""``status``: where a request, a push, or your recent requests stand."""

from __future__ import annotations

from collections import Counter

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.store import RequestRecord
from grammar import Status


async def status(ctx: Context, cmd: Status) -> None:
    """status [REQUEST-ID|REVISION]
    Shows a request's tasks, the bot's requests on a push, or your recent requests."""
    bot = ctx.bot
    if cmd.request_id is not None:
        record = await bot.store.request(cmd.request_id.text)
        if record is None:
            await ctx.refuse(f"There is no request {cmd.request_id.text}.")
            return
        await ctx.reply(await describe(ctx, record))
        return
    records = await bot.store.recent_requests(
        limit=200 if cmd.revision else 5, actor=None if cmd.revision else ctx.request.actor
    )
    if cmd.revision is not None:
        records = [
            r
            for r in records
            if r.revision == cmd.revision.node and (cmd.revision.project in (None, r.project))
        ]
    if not records:
        await ctx.reply(
            "No requests yet."
            if cmd.revision is None
            else "The bot scheduled nothing on that push."
        )
        return
    await ctx.reply("\n".join([await describe(ctx, r) for r in records[:5]]))


async def describe(ctx: Context, record: RequestRecord) -> str:
    tasks = await ctx.bot.store.plan(record.id)
    states = Counter(t.state or ("unsubmitted" if not t.submitted else "pending") for t in tasks)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return f"[{record.id}] {record.command or record.text}: {record.state.words}" + (
        f" ({counts})" if tasks else ""
    )


COMMAND = Command(
    "status",
    status,
    Level.READ,
    examples=("status r7f3a", "status", "status autoland@abc123f"),
)
