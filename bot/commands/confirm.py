"""``confirm``: go ahead with a request held because it creates many tasks."""

from __future__ import annotations

import datetime as dt

from bot.bisecting import load
from bot.commands.bisect import start_search
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.store import RequestState
from bot.submission import submitter_for
from bot.tctime import parse_time
from grammar import Confirm


async def confirm(ctx: Context, cmd: Confirm) -> None:
    """confirm REQUEST-ID
    Submits a request that was held for confirmation; only its author can, within the time limit."""
    bot = ctx.bot
    record = await bot.store.request(cmd.request_id.text)
    if record is None:
        await ctx.refuse(f"There is no request {cmd.request_id.text}.")
        return
    if record.state != RequestState.AWAITING_CONFIRMATION:
        await ctx.refuse(
            f"{record.id} is not waiting for confirmation (it is {record.state.words})."
        )
        return
    if (record.source, record.actor) != (ctx.request.source, ctx.request.actor):
        await ctx.refuse(f"Only {record.actor}, who asked for {record.id}, can confirm it.")
        return
    age = dt.datetime.now(dt.UTC) - parse_time(record.updated_at)
    if age > dt.timedelta(minutes=bot.settings.confirm_minutes):
        await bot.store.set_state(record.id, RequestState.CANCELLED, error="not confirmed in time")
        await ctx.refuse(
            f"{record.id} waited more than {bot.settings.confirm_minutes} minutes; ask again."
        )
        return
    search = await load(bot, record.id)
    if search is not None:  # a culprit search: its rounds go ahead
        await start_search(ctx, record.id, search)
        return
    submitter = submitter_for(bot.settings.project(record.project))
    await bot.store.set_state(record.id, submitter.state)
    await submitter.submit(bot, ctx.replier, record, None)


COMMAND = Command(
    "confirm",
    confirm,
    Level.WRITE,
    examples=("confirm r7f3a",),
)
