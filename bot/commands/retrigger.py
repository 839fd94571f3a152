"""``retrigger``: run jobs of a push again, named ones or every one that failed."""

from __future__ import annotations

import asyncio
from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, Resolver
from bot.graph.materialize import task_label
from bot.scheduling import Push, find_push, schedule_labels
from bot.tc.groups import group_entries
from grammar import Retrigger, TaskId

NO_FAILURES = "No job failed on {push}, so there is nothing to retrigger."
NO_EXCEPTIONS = "No job ended in an exception on {push}, so there is nothing to retrigger."
NO_SUCH_TASK = "There is no task `{task}` in the Queue (tasks expire, in a year by default)."
NOT_OF_THIS_PUSH = (
    "Task `{task}` ({label}) is not a job of {push}: it ran in task group `{group}`. "
    "Add `on REVISION` for the push it belongs to."
)


async def retrigger(ctx: Context, cmd: Retrigger) -> None:
    """retrigger JOBS|TASKIDS|failed|exception [on REVISION] [for PLATFORMS] [xN]
    Runs the jobs again as fresh tasks; `failed` means every job of the push that failed
    (or ended in an exception), `exception` every one that ended in an exception only."""
    push = await find_push(ctx, cmd.revision)
    if push is None:
        return
    labels: list[str] = []
    selectors = [s for s in cmd.selectors if not isinstance(s, TaskId)]
    for selector in cmd.selectors:
        if isinstance(selector, TaskId):
            label = await label_of_task(ctx, push, selector.text)
            if label is None:
                return
            labels.append(label)
    resolver = Resolver(push.graph, cmd.filters, shortlist_limit=ctx.bot.settings.shortlist_limit)
    if cmd.failed or cmd.exception:
        states = ("exception",) if cmd.exception else ("failed", "exception")
        failed = await failed_labels(ctx, push, states)
        if selectors:
            try:
                wanted = set((await asyncio.to_thread(resolver.resolve, selectors)).labels)
            except ResolveError as error:
                await ctx.refuse(str(error))
                return
            failed = [label for label in failed if label in wanted]
        elif resolver.allowed is not None:
            allowed = {push.graph.labels[i] for i in resolver.allowed}
            failed = [label for label in failed if label in allowed]
        if not failed:
            none = NO_EXCEPTIONS if cmd.exception else NO_FAILURES
            await ctx.reply(none.format(push=push.describe()))
            return
        labels += failed
    elif selectors:
        try:
            labels += (await asyncio.to_thread(resolver.resolve, selectors)).labels
        except ResolveError as error:
            await ctx.refuse(str(error))
            return
    labels = [label for label in dict.fromkeys(labels) if label in push.graph]
    await schedule_labels(ctx, push, labels, times=cmd.times, dry_run=cmd.dry_run, command=cmd)


async def label_of_task(ctx: Context, push: Push, task_id: str) -> str | None:
    """The job a taskId ran, if it is one of the push's; else None, after saying why."""
    try:
        definition = await ctx.bot.clients.queue.task(task_id)
    except TaskclusterRestFailure as error:
        if error.status_code != 404:
            raise
        await ctx.refuse(NO_SUCH_TASK.format(task=task_id))
        return None
    label = task_label(definition)
    group = definition.get("taskGroupId", "?")
    if group != push.decision_task_id or label not in push.graph:
        await ctx.refuse(
            NOT_OF_THIS_PUSH.format(task=task_id, label=label, push=push.describe(), group=group)
        )
        return None
    return label


async def failed_labels(
    ctx: Context, push: Push, states: tuple[str, ...] = ("failed", "exception")
) -> list[str]:
    """Labels of the push's jobs whose newest task ended in one of ``states``: a job run
    again since (a retrigger that passed, one still running) is not taken again, nor a
    task someone cancelled (an exception, but no failure of the job's)."""
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    async for entry in group_entries(ctx.bot.clients.queue, push.decision_task_id):
        label = task_label(entry["task"])
        created = str(entry["task"].get("created", ""))
        if label not in newest or created >= newest[label][0]:
            newest[label] = (created, entry["status"])
    found = []
    for label, (_, status) in newest.items():
        runs = status.get("runs") or [{}]
        if status["state"] in states and runs[-1].get("reasonResolved") != "canceled":
            found.append(label)
    return sorted(found)


COMMAND = Command(
    "retrigger",
    retrigger,
    Level.WRITE,
    gated=True,
    examples=(
        "retrigger failed x3",
        "retrigger exception",
        "retrigger M(bc3) on autoland@abc123f",
    ),
)
