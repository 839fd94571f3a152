"""``confirm``: go ahead with a request held because it creates many tasks."""

from __future__ import annotations

import datetime as dt

from bot.commands import command
from bot.reporting import requested_tasks
from bot.scheduling import find_push, submit_action, submit_request
from bot.service import Context
from bot.tctime import parse_time
from grammar import Confirm, Revision


@command("confirm", examples=("confirm r7f3a",))
async def confirm(ctx: Context, cmd: Confirm) -> None:
    """confirm REQUEST-ID
    Submits a request that was held for confirmation; only its author can, within the time limit."""
    bot = ctx.bot
    record = await bot.store.request(cmd.request_id.text)
    if record is None:
        await ctx.reply(f"There is no request {cmd.request_id.text}.")
        return
    if record.state != "awaiting_confirmation":
        await ctx.reply(
            f"{record.id} is not waiting for confirmation (it is {record.state.replace('_', ' ')})."
        )
        return
    if record.actor != ctx.request.actor:
        await ctx.reply(f"Only {record.actor}, who asked for {record.id}, can confirm it.")
        return
    age = dt.datetime.now(dt.UTC) - parse_time(record.updated_at)
    if age > dt.timedelta(minutes=bot.settings.confirm_minutes):
        await bot.store.set_state(record.id, "cancelled", error="not confirmed in time")
        await ctx.reply(
            f"{record.id} waited more than {bot.settings.confirm_minutes} minutes; ask again."
        )
        return
    if bot.settings.project(record.project).mode == "action":
        push = await find_push(ctx, Revision(record.revision, record.project))
        if push is None:
            return
        stored = await bot.store.plan(record.id)
        wanted = requested_tasks(stored)
        labels = list(dict.fromkeys(t.label for t in wanted))
        times = max(t.copy for t in wanted) + 1 if wanted else 1
        await bot.store.set_state(record.id, "triggering")
        await submit_action(ctx, push, record.id, labels, times, f"[{record.id}] {record.command}")
        return
    await submit_request(bot, ctx.replier, record.id)
