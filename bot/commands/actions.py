"""``actions``: the in-tree actions a push offers (or those that act on one of its tasks),
as its actions.json lists them."""

from __future__ import annotations

from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.action_mode import push_actions
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph.materialize import task_label
from bot.scheduling import find_decision
from bot.tc.actions import ActionError, applies
from grammar import Actions

HEADER = "{count} action{s} of {what} (as in Treeherder's action menu):"
NONE = "{what} offers no actions{which}."
NO_SUCH_TASK = "There is no task `{task}` in the Queue (tasks expire)."
ON_TASKS = "; `actions on TASKID` lists those that act on one of its tasks"
DESCRIPTION_SHOWN = 100  # characters of an action's description


async def actions(ctx: Context, cmd: Actions) -> None:
    """actions [on REVISION|TASKID]
    Lists the push's in-tree actions (name, title, what it does), or those that act on a
    task of it."""
    bot = ctx.bot
    tags: dict[str, str] | None = None
    if cmd.task is not None:
        try:
            definition: dict[str, Any] = await bot.clients.queue.task(cmd.task.text)
        except TaskclusterRestFailure as error:
            if error.status_code != 404:
                raise
            await ctx.refuse(NO_SUCH_TASK.format(task=cmd.task.text))
            return
        decision = str(definition.get("taskGroupId", ""))
        raw_tags = definition.get("tags") or {}
        tags = {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
        what = f"task `{cmd.task.text}` ({task_label(definition)})"
    else:
        found = await find_decision(ctx, cmd.revision)
        if found is None:
            return
        decision, project, node = found.decision_task_id, found.project, found.revision
        what = f"{project}@{node[:12]}" if node else f"the latest push of {project}"
    try:
        listed = (await push_actions(bot, decision)).get("actions") or []
    except ActionError as error:
        await ctx.refuse(f"{what[:1].upper()}{what[1:]}: {error}.")
        return
    # Of several actions of one name, the first that applies is the one (actions.json's rule).
    offered: list[dict[str, Any]] = []
    for action in listed:
        fits = isinstance(action, dict) and applies(action, tags)
        if fits and all(action.get("name") != taken.get("name") for taken in offered):
            offered.append(action)
    if not offered:
        which = ON_TASKS if tags is None and listed else ""
        await ctx.reply(NONE.format(what=what[:1].upper() + what[1:], which=which))
        return
    count = len(offered)
    lines = [HEADER.format(count=count, s="" if count == 1 else "s", what=what)]
    for action in offered:
        lines.append("  " + _describe(action))
    if tags is None and any(isinstance(a, dict) and a.get("context") for a in listed):
        lines.append("  and more that act on a task" + ON_TASKS)
    await ctx.reply("\n".join(lines))


def _describe(action: dict[str, Any]) -> str:
    name = str(action.get("name", "?"))
    title = str(action.get("title", "")).strip()
    described = " ".join(str(action.get("description", "")).split())
    if len(described) > DESCRIPTION_SHOWN:
        described = described[: DESCRIPTION_SHOWN - 1].rstrip() + "…"
    kind = str(action.get("kind", "?"))
    line = f"`{name}`" + (f" ({title})" if title and title.lower() != name.lower() else "")
    return line + (f": {described}" if described else "") + f" [{kind}]"


COMMAND = Command(
    "actions",
    actions,
    Level.READ,
    examples=("actions", "actions on fuCPrKG2T62-4YH1tWYa7Q"),
)
