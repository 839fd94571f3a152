"""In-tree actions: pick an action of a push's actions.json, render it, trigger its hook.

Rendering follows what Treeherder does for "Add new jobs": the action's ``hookPayload`` is
a JSON-e template rendered with ``taskGroupId``, ``taskId`` (None for actions without a
task context), ``input`` and the file's ``variables``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import jsone

SUPPORTED_VERSION = 1


class ActionError(LookupError):
    """The push's actions cannot do what was asked; the message says why."""


class HooksClient(Protocol):
    async def triggerHook(self, hookGroupId: str, hookId: str, payload: dict[str, Any]) -> Any: ...  # noqa: N802, N803


@dataclass(frozen=True, slots=True)
class RenderedAction:
    """A hook to trigger and the payload to trigger it with."""

    name: str
    hook_group_id: str
    hook_id: str
    payload: dict[str, Any]
    permission: str | None


def find_action(actions: dict[str, Any], name: str, *, with_task: bool) -> dict[str, Any]:
    """The hook action ``name`` that fits the context: a task (``context`` not empty) or not."""
    version = actions.get("version")
    if version != SUPPORTED_VERSION:
        raise ActionError(
            f"actions.json version {version} is not supported ({SUPPORTED_VERSION} is)"
        )
    named = [a for a in actions.get("actions", []) if a.get("name") == name]
    if not named:
        available = sorted({a.get("name", "?") for a in actions.get("actions", [])})
        raise ActionError(
            f"this push has no `{name}` action; it has {', '.join(available) or 'none'}"
        )
    for action in named:
        if action.get("kind") != "hook":
            continue
        if bool(action.get("context")) == with_task:
            return dict(action)
    raise ActionError(
        f"the `{name}` action of this push cannot run {'on a task' if with_task else 'on the push'}"
    )


def render_action(
    actions: dict[str, Any],
    name: str,
    *,
    task_group_id: str,
    input: Any,
    task_id: str | None = None,
) -> RenderedAction:
    action = find_action(actions, name, with_task=task_id is not None)
    context = {
        **actions.get("variables", {}),
        "taskGroupId": task_group_id,
        "taskId": task_id,
        "input": input,
    }
    payload = jsone.render(action["hookPayload"], context)
    return RenderedAction(
        name,
        action["hookGroupId"],
        action["hookId"],
        payload,
        (action.get("extra") or {}).get("actionPerm"),
    )


async def trigger(hooks: HooksClient, rendered: RenderedAction) -> str:
    """Trigger the action's hook; the taskId of the action task it created."""
    answer = await hooks.triggerHook(rendered.hook_group_id, rendered.hook_id, rendered.payload)
    task_id = answer.get("taskId") if isinstance(answer, dict) else None
    if not task_id:
        raise ActionError(f"the `{rendered.name}` hook created no task: {json.dumps(answer)[:200]}")
    return str(task_id)
