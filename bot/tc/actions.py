"""In-tree actions: pick an action of a push's actions.json, check it, render it, trigger its hook.

Picking follows the actions.json spec as Treeherder applies it: an action with an empty
``context`` acts on the task group; one with tag-sets acts on a task whose tags include
every tag of one of them (``{}`` matches any task), the first such action of the name
winning. Rendering is what Treeherder does: the ``hookPayload`` JSON-e template with
``taskGroupId``, ``taskId``, ``input`` and the file's ``variables``. Before triggering, the
input is validated against the action's schema and the decision task must hold
``in-tree:hook-action:<hookGroupId>/<hookId>`` (a try push could point its actions.json at a
hook it was never granted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsone
import jsonschema
import referencing
import referencing.exceptions

from bot.tc.scopes import satisfies

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
    # the actions.json entry it was rendered from (its schema, for a check run elsewhere)
    action: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def grant(self) -> str:
        """The scope the decision task must have for this hook to be its action."""
        return f"in-tree:hook-action:{self.hook_group_id}/{self.hook_id}"


def applies(action: Mapping[str, Any], tags: Mapping[str, str] | None) -> bool:
    """Whether ``action`` acts on a task with ``tags`` (None: on the task group)."""
    context = action.get("context") or []
    if not isinstance(context, list):
        return False
    if tags is None:
        return not context
    return any(
        isinstance(tag_set, dict) and all(tags.get(k) == v for k, v in tag_set.items())
        for tag_set in context
    )


def find_action(
    actions: Mapping[str, Any], name: str, *, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The first hook action ``name`` that acts on a task with ``tags`` (None: the group)."""
    version = actions.get("version")
    if version != SUPPORTED_VERSION:
        raise ActionError(
            f"actions.json version {version} is not supported ({SUPPORTED_VERSION} is)"
        )
    listed = _listed(actions)
    named = [a for a in listed if a.get("name") == name]
    if not named:
        available = sorted({str(a.get("name", "?")) for a in listed})
        raise ActionError(
            f"this push has no `{name}` action; it has {', '.join(available) or 'none'}"
        )
    hooks = [a for a in named if a.get("kind") == "hook"]
    if not hooks:
        kinds = ", ".join(sorted({f"`{a.get('kind')}`" for a in named}))
        raise ActionError(
            f"the push's `{name}` action is not a hook action (kind {kinds}): the bot "
            "triggers hook actions only"
        )
    for action in hooks:
        if applies(action, tags):
            return dict(action)
    if tags is None:
        raise ActionError(f"the `{name}` action of this push cannot run on the push")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"
    raise ActionError(
        f"the `{name}` action of this push cannot run on a task with these tags ({shown})"
    )


def _listed(actions: Mapping[str, Any]) -> list[dict[str, Any]]:
    listed = actions.get("actions")
    if not isinstance(listed, list):
        raise ActionError("the push's actions.json has no list of actions")
    return [a for a in listed if isinstance(a, dict)]


def has_action(actions: Mapping[str, Any], name: str) -> bool:
    listed = actions.get("actions")
    return isinstance(listed, list) and any(
        isinstance(a, dict) and a.get("name") == name for a in listed
    )


def check_input(action: Mapping[str, Any], input: Any) -> None:
    """Refuse ``input`` the action's schema refuses, as its callback would (after a hook
    run and an action task spent on it)."""
    schema = action.get("schema")
    if not isinstance(schema, dict):
        return
    name = action.get("name")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    # An empty registry: a `$ref` resolves inside the schema or not at all. A push's
    # actions.json is anyone's on a try push; its references are never fetched or read.
    validator = cls(schema, registry=referencing.Registry())
    try:
        cls.check_schema(schema)
        problems = [e for e in validator.iter_errors(input) if not _refuses_everything(e)]
    except jsonschema.SchemaError as error:
        raise ActionError(f"the `{name}` action's schema is broken: {error.message}") from None
    except referencing.exceptions.Unresolvable as error:
        ref = str(getattr(error, "ref", "") or error)[:100]
        raise ActionError(
            f"the `{name}` action's schema refers to `{ref}`, which it does not define "
            "(the bot fetches nothing from outside a schema)"
        ) from None
    except RecursionError:
        raise ActionError(f"the `{name}` action's schema refers to itself without end") from None
    problem = jsonschema.exceptions.best_match(problems)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "input"
        raise ActionError(f"the `{action.get('name')}` action refuses {where}: {problem.message}")


def _refuses_everything(error: jsonschema.ValidationError) -> bool:
    """An ``additionalProperties: false`` beside no ``properties`` at all: a schema slip
    that refuses every key (real Gecko retrigger-multiple schemas have it, and its callback
    never validates), not a rule the callback holds its input to."""
    return (
        error.validator == "additionalProperties"
        and isinstance(error.schema, dict)
        and "properties" not in error.schema
        and "patternProperties" not in error.schema
    )


def render_action(
    actions: Mapping[str, Any],
    name: str,
    *,
    task_group_id: str,
    input: Any,
    task_id: str | None = None,
    task_tags: Mapping[str, str] | None = None,
    check: bool = True,
) -> RenderedAction:
    """The hook and payload of action ``name``, for the group or for task ``task_id``
    (picked by ``task_tags``; none given: any task's action). ``check=False`` leaves the
    input's check against the action's schema to the caller (to run it isolated)."""
    tags = None if task_id is None else dict(task_tags or {})
    action = find_action(actions, name, tags=tags)
    if check:
        check_input(action, input)
    variables = actions.get("variables") or {}
    group, hook = action.get("hookGroupId"), action.get("hookId")
    if not isinstance(variables, dict):
        raise ActionError("the push's actions.json has `variables` that are not an object")
    if not (isinstance(group, str) and group and isinstance(hook, str) and hook):
        raise ActionError(f"the push's `{name}` action names no hook (hookGroupId, hookId)")
    if not isinstance(action.get("hookPayload"), dict):
        raise ActionError(f"the push's `{name}` action has no hookPayload object")
    context = {
        **variables,
        "taskGroupId": task_group_id,
        "taskId": task_id,
        "input": input,
    }
    try:
        payload = jsone.render(action["hookPayload"], context)
    except (jsone.JSONTemplateError, KeyError) as error:
        raise ActionError(
            f"the `{name}` action's hookPayload cannot be rendered: {error}"
        ) from None
    except RecursionError:
        raise ActionError(f"the `{name}` action's hookPayload nests too deeply") from None
    if not isinstance(payload, dict):
        raise ActionError(f"the push's `{name}` action's hookPayload renders no object")
    return RenderedAction(
        name,
        group,
        hook,
        payload,
        ((action.get("extra") or {}) if isinstance(action.get("extra"), dict) else {}).get(
            "actionPerm"
        ),
        action,
    )


def check_grant(decision_scopes: Iterable[str], rendered: RenderedAction) -> None:
    """Refuse a hook the push's decision task was not granted as an action."""
    if not satisfies(decision_scopes, rendered.grant):
        raise ActionError(
            f"the push's `{rendered.name}` action names hook "
            f"`{rendered.hook_group_id}/{rendered.hook_id}`, which its decision task was not "
            f"granted (`{rendered.grant}`): it was not triggered"
        )


async def trigger(hooks: HooksClient, rendered: RenderedAction) -> str:
    """Trigger the action's hook; the taskId of the action task it created."""
    answer = await hooks.triggerHook(rendered.hook_group_id, rendered.hook_id, rendered.payload)
    task_id = answer.get("taskId") if isinstance(answer, dict) else None
    if not task_id:
        raise ActionError(f"the `{rendered.name}` hook created no task: {json.dumps(answer)[:200]}")
    return str(task_id)
