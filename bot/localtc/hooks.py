"""The Hooks service: hooks whose JSON-e task template is rendered and created when triggered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsone
import slugid

from bot.localtc.errors import TaskclusterError, input_error, not_found
from bot.localtc.queue import Queue
from bot.tctime import format_time


@dataclass
class Hook:
    """A hook: its task template, and every payload it was triggered with (for tests)."""

    hook_group_id: str
    hook_id: str
    task: dict[str, Any]
    fired: list[dict[str, Any]] = field(default_factory=list)


class Hooks:
    """Hooks by (group, id); triggering renders the template and creates the task."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.hooks: dict[tuple[str, str], Hook] = {}

    def add(self, hook: Hook) -> None:
        self.hooks[(hook.hook_group_id, hook.hook_id)] = hook

    def trigger(self, group: str, hook_id: str, payload: Any) -> dict[str, Any]:
        hook = self.hooks.get((group, hook_id))
        if hook is None:
            raise not_found(f"hook {group}/{hook_id} not found")
        task_id = payload.get("taskId") if isinstance(payload, dict) else None
        task_id = task_id or slugid.nice()
        context = {
            "firedBy": "triggerHook",
            "taskId": task_id,
            "payload": payload,
            "now": format_time(self.queue.now()),
        }
        try:
            rendered = jsone.render(hook.task, context)
        except jsone.JSONTemplateError as error:
            raise input_error(f"the hook's task template failed to render: {error}") from None
        hook.fired.append(payload)
        if rendered is None:
            return {}
        if not isinstance(rendered, dict):
            raise TaskclusterError(
                400, "InputError", "the hook's task template did not render an object"
            )
        self.queue.create(task_id, self.queue.check_definition(task_id, rendered))
        return {"taskId": task_id, "status": {"taskId": task_id}}


def action_hook_template(decision_task_id: str) -> dict[str, Any]:
    """A task template like Gecko's in-tree action hooks: an action task in the push's group
    that carries the action's rendered input in ``extra.action``."""
    return {
        "created": {"$eval": "now"},
        "deadline": {"$fromNow": "1 day"},
        "expires": {"$fromNow": "1 year"},
        "taskGroupId": {"$eval": "payload.decision.action.taskGroupId"},
        "schedulerId": "gecko-level-3",
        "provisionerId": "gecko-3",
        "workerType": "decision",
        "payload": {
            "command": ["taskgraph", "action-callback"],
            "env": {
                "ACTION_CALLBACK": {"$eval": "payload.decision.action.cb_name"},
                "ACTION_INPUT": {"$json": {"$eval": "payload.user.input"}},
                "ACTION_TASK_GROUP_ID": {"$eval": "payload.user.taskGroupId"},
                "ACTION_TASK_ID": {"$json": {"$eval": "payload.user.taskId"}},
            },
        },
        "metadata": {
            "name": {"$eval": "'Action: ' + payload.decision.action.title"},
            "description": {"$eval": "payload.decision.action.description"},
            "owner": "someone@example.com",
            "source": "https://hg.example.com/actions",
        },
        "extra": {
            "action": {
                "name": {"$eval": "payload.decision.action.name"},
                "input": {"$eval": "payload.user.input"},
                "context": {
                    "taskGroupId": {"$eval": "payload.user.taskGroupId"},
                    "taskId": {"$eval": "payload.user.taskId"},
                },
            },
            "parent": decision_task_id,
        },
        "tags": {"kind": "action-callback"},
        "dependencies": [decision_task_id],
        "requires": "all-resolved",
    }
