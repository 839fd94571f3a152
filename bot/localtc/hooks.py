"""The Hooks service: hooks whose JSON-e task template is rendered and created when triggered.

As the real service does: a payload must match the hook's ``triggerSchema`` (an
``InputError`` naming what failed, as ajv's ``errorsText`` words it); the template is
rendered with ``{firedBy, taskId, payload, clientId, now}``; a Queue refusal comes back as
``InputError: While calling createTask: <code> ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsone
import jsonschema
import referencing
import slugid

from bot.localtc import validation
from bot.localtc.errors import TaskclusterError, input_error, not_found
from bot.localtc.queue import Queue
from bot.tctime import format_time

# create-hook-request.json's default: a hook without a triggerSchema accepts only {}.
DEFAULT_TRIGGER_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False}
ACTION_WORKER_TYPE = "decision"


@dataclass
class Hook:
    """A hook: its task template, its trigger schema, and every payload it fired with."""

    hook_group_id: str
    hook_id: str
    task: dict[str, Any]
    trigger_schema: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRIGGER_SCHEMA))
    fired: list[dict[str, Any]] = field(default_factory=list)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    # references resolve inside the schema only: nothing is fetched
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=referencing.Registry())


def check_trigger_schema(schema: Any) -> None:
    """Refuse a ``triggerSchema`` that is not a JSON Schema, as createHook does."""
    if not isinstance(schema, dict):
        raise input_error("triggerSchema is not a valid JSON schema:\n * it must be an object")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(p) for p in error.absolute_path)
        raise input_error(
            f"triggerSchema is not a valid JSON schema:\n * Property /{where} {error.message}"
        ) from None


# ajv's wording of a failed keyword, from the keyword's value (as the real service reports)
AJV_WORDS: dict[str, str] = {
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "minLength": "must NOT have fewer than {} characters",
    "maxLength": "must NOT have more than {} characters",
    "minItems": "must NOT have fewer than {} items",
    "maxItems": "must NOT have more than {} items",
    "minProperties": "must NOT have fewer than {} properties",
    "maxProperties": "must NOT have more than {} properties",
    "multipleOf": "must be multiple of {}",
    "pattern": 'must match pattern "{}"',
    "format": 'must match format "{}"',
    "const": "must be equal to constant",
    "enum": "must be equal to one of the allowed values",
    "uniqueItems": "must NOT have duplicate items",
    "anyOf": "must match a schema in anyOf",
    "oneOf": "must match exactly one schema in oneOf",
    "not": "must NOT be valid",
}


def _ajv_message(error: jsonschema.ValidationError) -> str:
    """One failure worded as ajv does (``data/user must have required property 'input'``)."""
    where = "data" + "".join(f"/{part}" for part in error.absolute_path)
    kind, expected = str(error.validator), error.validator_value
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(expected)
        return f"{where} must have required property '{missing}'"
    if kind == "additionalProperties" and expected is False:
        known = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - known) if isinstance(error.instance, dict) else []
        named = ", ".join(f"'{name}'" for name in extra)
        return f"{where} must NOT have additional properties ({named})"
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"{where} must be {','.join(names)}"
    if kind in AJV_WORDS:
        return f"{where} {AJV_WORDS[kind].format(expected)}"
    return f"{where} {error.message}"


def trigger_problems(schema: dict[str, Any], payload: Any) -> list[str]:
    """Every way ``payload`` fails ``schema``, worded as the real service reports them."""
    errors = sorted(_validator(schema).iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [_ajv_message(error) for error in errors]


class Hooks:
    """Hooks by (group, id); triggering renders the template and creates the task."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.hooks: dict[tuple[str, str], Hook] = {}

    def add(self, hook: Hook) -> None:
        check_trigger_schema(hook.trigger_schema)
        self.hooks[(hook.hook_group_id, hook.hook_id)] = hook

    def trigger(self, group: str, hook_id: str, payload: Any, client_id: str) -> dict[str, Any]:
        """Fire hook ``group/hook_id`` for caller ``client_id`` (the authenticated clientId
        of the triggerHook request) with ``payload``."""
        hook = self.hooks.get((group, hook_id))
        if hook is None:
            raise not_found(f"hook {group}/{hook_id} not found")
        problems = trigger_problems(hook.trigger_schema, payload)
        if problems:
            raise input_error("; ".join(problems))
        task_id = self._task_id(payload)
        context = {
            "firedBy": "triggerHook",
            "taskId": task_id,
            "payload": payload,
            "clientId": client_id,
            "now": format_time(self.queue.now()),
        }
        hook.fired.append(payload)
        try:
            rendered = jsone.render(hook.task, context)
        except jsone.JSONTemplateError as error:
            raise input_error(f"While firing hook:\n\n{error}") from None
        if rendered is None:
            return {}
        return self._create(task_id, rendered)

    @staticmethod
    def _task_id(payload: Any) -> str:
        """The payload's ``taskId`` when it gives one (a slugid), else a new one."""
        given = payload.get("taskId") if isinstance(payload, dict) else None
        if given is None:
            return str(slugid.nice())
        if not isinstance(given, str) or not validation.SLUG.match(given):
            raise input_error(f"taskId `{given}` is not a slugid")
        return given

    def _create(self, task_id: str, rendered: Any) -> dict[str, Any]:
        try:
            task = self.queue.check_definition(task_id, rendered)
            self.queue.create(task_id, task)
        except TaskclusterError as error:
            raise input_error(
                f"While calling createTask: {error.code}\n\n{error.message}"
            ) from None
        return {"taskId": task_id, "status": {"taskId": task_id}}


# --- in-tree action hooks -----------------------------------------------------------------


def action_trigger_schema() -> dict[str, Any]:
    """The ``triggerSchema`` of an in-tree action hook: what Treeherder and the bot send
    (``decision`` baked in by the decision task, ``user`` filled in per use)."""
    text: dict[str, Any] = {"type": "string"}
    slug: dict[str, Any] = {"type": "string", "pattern": validation.SLUG.pattern}

    def required(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": properties,
            "required": [name for name in properties if name not in optional],
        }

    return {
        "type": "object",
        "description": "The payload of an in-tree action hook",
        "properties": {
            "decision": required(
                {
                    "action": required(
                        {
                            "name": text,
                            "title": text,
                            "description": text,
                            "taskGroupId": slug,
                            "cb_name": text,
                            "symbol": text,
                        }
                    ),
                    "push": required(
                        {
                            "owner": text,
                            "pushlog_id": text,
                            "revision": text,
                            "base_revision": text,
                        },
                        optional=("base_revision",),
                    ),
                    "repository": required({"url": text, "project": text, "level": text}),
                    "parameters": {"type": "object"},
                },
                optional=("parameters",),
            ),
            "user": {
                **required(
                    {
                        "input": {"type": ["object", "null"]},
                        "taskId": {"anyOf": [slug, {"type": "null"}]},
                        "taskGroupId": slug,
                    }
                ),
                "additionalProperties": False,
            },
        },
        "required": ["decision", "user"],
        "additionalProperties": False,
    }


def _action_task(trust_domain: str) -> dict[str, Any]:
    """The action task, in the names Gecko's ``.taskcluster.yml`` uses for actions."""
    index = f"index.{trust_domain}.v2.${{repository.project}}"
    return {
        "created": {"$eval": "now"},
        "deadline": {"$fromNow": "1 day"},
        "expires": {"$fromNow": "1 year"},
        "taskGroupId": "${action.taskGroupId}",
        "schedulerId": f"{trust_domain}-level-${{repository.level}}",
        "provisionerId": f"{trust_domain}-${{repository.level}}",
        "workerType": ACTION_WORKER_TYPE,
        "dependencies": [],
        "requires": "all-completed",
        "routes": [
            f"{index}.pushlog-id.${{push.pushlog_id}}.actions.${{ownTaskId}}",
            f"{index}.revision.${{push.revision}}.actions.${{ownTaskId}}",
        ],
        "payload": {
            "command": ["taskgraph", "action-callback"],
            "env": {
                "ACTION_CALLBACK": "${action.cb_name}",
                "ACTION_INPUT": {"$json": {"$eval": "input"}},
                "ACTION_TASK_GROUP_ID": "${action.taskGroupId}",
                "ACTION_TASK_ID": {"$json": {"$eval": "taskId"}},
            },
            "maxRunTime": 1800,
        },
        "metadata": {
            "name": "Action: ${action.title}",
            "description": (
                "${action.description}\n\nAction triggered by clientID `${clientId}`\n"
            ),
            "owner": "${push.owner}",
            "source": "${repository.url}/raw-file/${push.revision}/.taskcluster.yml",
        },
        "tags": {"createdForUser": "${push.owner}", "kind": "action-callback"},
        "extra": {
            "tasks_for": "action",
            "parent": "${action.taskGroupId}",
            "action": {
                "name": "${action.name}",
                "context": {
                    "taskGroupId": "${action.taskGroupId}",
                    "taskId": {"$eval": "taskId"},
                    "input": {"$eval": "input"},
                    "clientId": {"$eval": "clientId"},
                },
            },
            "treeherder": {
                "machine": {"platform": f"{trust_domain}-decision"},
                "groupName": "action-callback",
                "groupSymbol": "AC",
                "symbol": "${action.symbol}",
            },
        },
    }


def action_hook_template(
    decision_task_id: str | None = None, *, trust_domain: str = "gecko"
) -> dict[str, Any]:
    """A task template like the in-tree action hooks': an action task in the push's group
    (``decision.action.taskGroupId``), indexed under the push's ``actions`` namespaces
    (by pushlog id and by revision) and carrying the action's input in ``extra.action``.

    Like the real hook it serves every push of the repository; ``decision_task_id`` is
    accepted for older callers and not used."""
    del decision_task_id
    return {
        "$let": {
            "action": {"$eval": "payload.decision.action"},
            "push": {"$eval": "payload.decision.push"},
            "repository": {"$eval": "payload.decision.repository"},
            "input": {"$eval": "payload.user.input"},
            "taskId": {"$eval": "payload.user.taskId"},
            "taskGroupId": {"$eval": "payload.user.taskGroupId"},
            "ownTaskId": {"$eval": "taskId"},
            "clientId": {"$eval": "clientId"},
        },
        "in": _action_task(trust_domain),
    }


def action_hook(
    hook_group_id: str,
    hook_id: str,
    decision_task_id: str | None = None,
    *,
    trust_domain: str = "gecko",
) -> Hook:
    """An in-tree action hook: the action task template and its ``triggerSchema``."""
    return Hook(
        hook_group_id,
        hook_id,
        action_hook_template(decision_task_id, trust_domain=trust_domain),
        trigger_schema=action_trigger_schema(),
    )
