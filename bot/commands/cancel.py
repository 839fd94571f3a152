"""``cancel``: cancel what the bot scheduled, or a task."""

from __future__ import annotations

from taskcluster.exceptions import TaskclusterRestFailure

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.store import RequestState
from grammar import Cancel, RequestId


async def cancel(ctx: Context, cmd: Cancel) -> None:
    """cancel REQUEST-ID|TASKID|all [on REVISION]
    Cancels the tasks of a request, one task, or everything the bot scheduled on the push."""
    bot = ctx.bot
    task_ids: list[str] = []
    requests = []
    if cmd.all:
        revision = cmd.revision.node if cmd.revision else ctx.request.revision
        requests = [
            r
            for r in await bot.store.recent_requests(limit=1000)
            if r.revision == revision
            and r.state in (RequestState.SUBMITTED, RequestState.SUBMITTING)
        ]
    for target in cmd.targets:
        if isinstance(target, RequestId):
            record = await bot.store.request(target.text)
            if record is None:
                await ctx.refuse(f"There is no request {target.text}.")
                return
            requests.append(record)
        else:
            task_ids.append(target.text)
    for record in requests:
        task_ids += [t.task_id for t in await bot.store.plan(record.id) if t.submitted]
    cancelled = 0
    for task_id in dict.fromkeys(task_ids):
        try:
            await bot.clients.queue.cancelTask(task_id)
            cancelled += 1
        except TaskclusterRestFailure as error:
            if error.status_code != 409:  # already resolved: nothing to cancel
                await ctx.refuse(f"Could not cancel {task_id}: {error.status_code} {error}")
                return
    for record in requests:
        await bot.store.set_state(record.id, RequestState.CANCELLED)
    await bot.store.audit(
        actor=ctx.request.actor,
        source=ctx.request.source,
        place=ctx.request.place,
        action="cancel",
        detail={"tasks": len(task_ids), "requests": [r.id for r in requests]},
    )
    await ctx.reply(
        f"Cancelled {cancelled} task{'s' if cancelled != 1 else ''}"
        + (f" of {', '.join(r.id for r in requests)}." if requests else ".")
    )


COMMAND = Command(
    "cancel",
    cancel,
    Level.WRITE,
    examples=("cancel r7f3a", "cancel all on autoland@abc123f"),
)
