"""``rerun``: run tasks again as they are, the same taskIds (the Queue's ``rerunTask``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.acting import ScopesUnknownError, acting_for
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph.materialize import task_label
from bot.reporting import task_url
from grammar import Rerun

# taskgraph's own rerun action reruns only these: a green or a waiting task is left alone.
RERUN_STATES = ("failed", "exception")
MAX_RERUNS = 20  # tasks one command may rerun
TOO_MANY = "`rerun` takes at most {cap} tasks at a time, not {count}: split the list."
NO_SUCH_TASK = "`{task}`: no such task in the Queue (tasks expire)."
UNKNOWN_PROJECT = (
    "`{task}` ({label}): the project of its push cannot be told (its decision task has no "
    "readable parameters yet), so it is not rerun from here."
)
DECISION = (
    "`{task}` is a decision task: rerunning it makes the push's tasks again. Ask the push's "
    "owners, or rerun it in Taskcluster's own interface."
)
DENIED = "`{task}` ({label}): {reason}"
NOT_HERE = (
    "`{task}` ({label}) is a task of {project}, and commands here are for {home}: ask where "
    "{project} is served."
)
ALREADY = "`{task}` ({label}) is {state} already: nothing to rerun."
COMPLETED = (
    "`{task}` ({label}) completed: `rerun` is for a task that ended in a failure or an "
    "exception. To run the job again as a new task, `retrigger {task}`."
)
CANCELLED = "`{task}` ({label}) was cancelled: it is not rerun (`retrigger {task}` makes it anew)."
UNSCHEDULED = "`{task}` ({label}) has not run yet: it waits for its dependencies."
PAST_DEADLINE = "`{task}` ({label}) is past its deadline, so the Queue cannot run it again."
REFUSED = "`{task}` ({label}): the Queue refused to rerun it ({why})."
RERAN = "Running again, same taskId: {tasks}."
AS_ROLE = "{who} acts in Taskcluster as `{role}`, which may not rerun it"


@dataclass
class _Outcome:
    reran: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


async def rerun(ctx: Context, cmd: Rerun) -> None:
    """rerun TASKIDS
    Runs failed or exception tasks again as they are, with the same taskIds (for a failure
    of the infrastructure); `retrigger` runs jobs again as new tasks."""
    if len(cmd.tasks) > MAX_RERUNS:
        await ctx.refuse(TOO_MANY.format(cap=MAX_RERUNS, count=len(cmd.tasks)))
        return
    outcome = _Outcome()
    # One rerun at a time here: two at once would both see "failed" and both say they reran.
    async with ctx.bot.exclusive("rerun"):
        for task in cmd.tasks:
            await _one(ctx, task.text, outcome)
    lines = []
    if outcome.reran:
        lines.append(RERAN.format(tasks=", ".join(outcome.reran)))
    lines += outcome.said
    if not outcome.reran:
        ctx.refused = True
    await ctx.reply("\n".join(lines))


async def _one(ctx: Context, task_id: str, outcome: _Outcome) -> None:
    bot = ctx.bot
    queue = bot.clients.queue
    try:
        definition: dict[str, Any] = await queue.task(task_id)
        status = (await queue.status(task_id))["status"]
    except TaskclusterRestFailure as error:
        if error.status_code != 404:
            raise
        outcome.said.append(NO_SUCH_TASK.format(task=task_id))
        return
    label = task_label(definition) or task_id
    group = str(definition.get("taskGroupId", ""))
    if group == task_id:
        outcome.said.append(DECISION.format(task=task_id))
        return
    project = await _project_of(ctx, group)
    if project is None:
        outcome.said.append(UNKNOWN_PROJECT.format(task=task_id, label=label))
        return
    home = ctx.request.project
    if home is not None and project != home and not _admits(ctx, project, home):
        outcome.said.append(NOT_HERE.format(task=task_id, label=label, project=project, home=home))
        return
    # The task's project's rules decide who may rerun it, as `on` its push would.
    command = ctx.commands.get("rerun") if ctx.commands is not None else None
    if command is not None and ctx.authorize is not None:
        reason = await ctx.authorize(command, project, Level.NONE)
        if reason is not None:
            outcome.said.append(DENIED.format(task=task_id, label=label, reason=reason))
            return
    state = status["state"]
    if state in ("pending", "running"):
        outcome.said.append(ALREADY.format(task=task_id, label=label, state=state))
        return
    if state == "completed":
        outcome.said.append(COMPLETED.format(task=task_id, label=label))
        return
    if state == "unscheduled":
        outcome.said.append(UNSCHEDULED.format(task=task_id, label=label))
        return
    runs = status.get("runs") or [{}]
    if state == "exception" and runs[-1].get("reasonResolved") == "canceled":
        outcome.said.append(CANCELLED.format(task=task_id, label=label))
        return
    if state not in RERUN_STATES:
        outcome.said.append(ALREADY.format(task=task_id, label=label, state=state))
        return
    try:
        acting = await acting_for(bot, ctx.request.source, ctx.request.actor, project)
    except ScopesUnknownError as error:
        outcome.said.append(REFUSED.format(task=task_id, label=label, why=error))
        return
    try:
        await acting.clients.queue.rerunTask(task_id)
    except TaskclusterRestFailure as error:
        if error.status_code == 409:
            outcome.said.append(PAST_DEADLINE.format(task=task_id, label=label))
            return
        if error.status_code == 403:
            why = (
                AS_ROLE.format(who=acting.who, role=acting.role)
                if acting.role is not None
                else "the bot lacks the scope `queue:rerun-task:…` for it"
            )
            outcome.said.append(REFUSED.format(task=task_id, label=label, why=why))
            return
        raise
    await bot.store.audit(
        actor=ctx.request.actor,
        source=ctx.request.source,
        place=ctx.request.place,
        action="rerun",
        detail={"task": task_id, "label": label, "project": project},
    )
    outcome.reran.append(f"{label} {task_url(bot, task_id)}")


def _admits(ctx: Context, project: str | None, home: str) -> bool:
    return ctx.bot.settings.project(project).admits(home)


async def _project_of(ctx: Context, group: str) -> str | None:
    """The project whose push the task is of (its decision task's parameters say), or None
    when that cannot be told."""
    if not group:
        return None
    project = (await ctx.bot.decisions.parameters(group)).get("project")
    return str(project) if project else None


COMMAND = Command(
    "rerun",
    rerun,
    Level.WRITE,
    gated=True,
    examples=("rerun fuCPrKG2T62-4YH1tWYa7Q",),
)
