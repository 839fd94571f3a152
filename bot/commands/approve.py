"""``approve``: let a pull request from a fork be scheduled at its current head."""

from __future__ import annotations

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.core.request import ReviewedCode
from grammar import Approve

NO_PULL_REQUEST = (
    "`approve` is for GitHub pull requests from forks: it lets people without write "
    "permission schedule jobs on the pull request's current head. There is none here."
)
NOT_A_FORK = "{place} is not from a fork: its jobs can be scheduled without approval."
MOVED = (
    "The head of {place} is {head}, not `{asked}`: review {head}, then `approve` it "
    "(or `approve {head}`)."
)
APPROVED = (
    "Approved {head} of {place}: people allowed to schedule here may now do so on it. "
    "A new push needs a new approval."
)
ALREADY = "{head} of {place} was approved by @{approver} already."


async def approve(ctx: Context, cmd: Approve) -> None:
    """approve [REVISION]
    Lets jobs be scheduled on a GitHub pull request from a fork at its current head, by people
    without write permission (`ok-to-test`). Naming the head you reviewed guards against a push
    made since; a new push needs a new approval."""
    request = ctx.request
    head = request.revision
    origin = request.origin
    if not isinstance(origin, ReviewedCode) or not origin.pull_request or not head:
        await ctx.refuse(NO_PULL_REQUEST)
        return
    short = head[:12]
    if cmd.revision is not None and not (
        cmd.revision.node and len(cmd.revision.node) >= 7 and head.startswith(cmd.revision.node)
    ):
        asked = cmd.revision.canonical()
        await ctx.refuse(MOVED.format(place=request.place, head=short, asked=asked))
        return
    if not origin.fork:
        await ctx.refuse(NOT_A_FORK.format(place=request.place))
        return
    store = ctx.bot.store
    if not await store.approve(request.source, request.place, head, request.actor):
        approver = await store.approver(request.source, request.place, head)
        await ctx.reply(ALREADY.format(head=short, place=request.place, approver=approver))
        return
    await store.audit(
        actor=request.actor,
        source=request.source,
        place=request.place,
        action="approved",
        detail={"revision": head},
    )
    await ctx.reply(APPROVED.format(head=short, place=request.place))


COMMAND = Command(
    "approve",
    approve,
    Level.WRITE,
    examples=("approve", "approve 0d1a26e"),
    about=ReviewedCode,
)
