"""The local Hooks service is as strict as the real one: triggerSchema, scopes, JSON-e context."""

from __future__ import annotations

import json
from typing import Any

import jsone
import jsonschema
import pytest
import taskcluster.aio as tc_aio
from taskcluster.exceptions import TaskclusterRestFailure

from bot.localtc.auth import Client
from bot.localtc.errors import TaskclusterError
from bot.localtc.hooks import (
    DEFAULT_TRIGGER_SCHEMA,
    Hook,
    Hooks,
    action_hook,
    action_trigger_schema,
    trigger_problems,
)
from bot.localtc.server import LocalTaskcluster
from tests.conftest import load_reference_json
from tests.tcfixtures import Running, local_tc, new_id

__all__ = ["local_tc"]

GROUP, HOOK = "project-test", "echo/v1"
TRIGGER_SCOPE = f"hooks:trigger-hook:{GROUP}/{HOOK}"
ECHO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "count": {"type": "integer", "minimum": 1}},
    "required": ["message"],
    "additionalProperties": False,
}


def echo_template() -> dict[str, Any]:
    """A task that shows its whole JSON-e context: owner and extra come from it."""
    return {
        "created": {"$eval": "now"},
        "deadline": {"$fromNow": "1 hour"},
        "provisionerId": "proj-test",
        "workerType": "linux",
        "payload": {"command": ["echo", "${payload.message}"]},
        "metadata": {
            "name": "echo",
            "description": "fired by ${firedBy}",
            "owner": "${clientId}",
            "source": "https://example.com/hooks",
        },
        "extra": {
            "context": {
                "firedBy": {"$eval": "firedBy"},
                "taskId": {"$eval": "taskId"},
                "clientId": {"$eval": "clientId"},
                "payload": {"$eval": "payload"},
                "now": {"$eval": "now"},
            }
        },
    }


def add_client(tc: LocalTaskcluster, client_id: str, *scopes: str) -> dict[str, str]:
    client = Client(client_id, f"{client_id.replace('/', '-')}-token-0123456789", scopes)
    tc.clients[client_id] = client
    return {"clientId": client.client_id, "accessToken": client.access_token}


def hooks_client(running: Running, credentials: dict[str, str] | None = None) -> tc_aio.Hooks:
    options = running.options(**({"credentials": credentials} if credentials else {}))
    return tc_aio.Hooks(options, session=running.session)


@pytest.fixture
def echo(local_tc: Running) -> Hook:
    hook = Hook(GROUP, HOOK, echo_template(), trigger_schema=ECHO_SCHEMA)
    local_tc.tc.hooks.add(hook)
    return hook


async def test_trigger_renders_the_documented_context(local_tc: Running, echo: Hook) -> None:
    credentials = add_client(local_tc.tc, "project/hook-user", TRIGGER_SCOPE)
    answer = await hooks_client(local_tc, credentials).triggerHook(
        GROUP, HOOK, {"message": "hello", "count": 2}
    )
    task_id = answer["taskId"]
    assert answer == {"taskId": task_id, "status": {"taskId": task_id}}
    task = await local_tc.queue().task(task_id)
    assert task["metadata"]["owner"] == "project/hook-user"  # the caller, from Hawk
    assert task["payload"]["command"] == ["echo", "hello"]
    context = task["extra"]["context"]
    assert context == {
        "firedBy": "triggerHook",
        "taskId": task_id,
        "clientId": "project/hook-user",
        "payload": {"message": "hello", "count": 2},
        "now": task["created"],
    }
    assert echo.fired == [{"message": "hello", "count": 2}]


async def test_a_payload_the_trigger_schema_refuses_creates_nothing(
    local_tc: Running, echo: Hook
) -> None:
    hooks = hooks_client(local_tc)
    refusals = {
        "data must have required property 'message'": {"count": 1},
        "data must NOT have additional properties ('colour')": {"message": "x", "colour": 1},
        "data/count must be integer": {"message": "x", "count": "two"},
        "data/count must be >= 1": {"message": "x", "count": 0},
    }
    for expected, payload in refusals.items():
        with pytest.raises(TaskclusterRestFailure) as caught:
            await hooks.triggerHook(GROUP, HOOK, payload)
        assert caught.value.status_code == 400
        assert caught.value.body["code"] == "InputError"
        assert expected in caught.value.body["message"], caught.value.body["message"]
    with pytest.raises(TaskclusterRestFailure) as both:
        await hooks.triggerHook(GROUP, HOOK, {"count": "x"})
    assert both.value.body["message"].count("; ") == 1  # every failure, as ajv's allErrors
    assert local_tc.tc.queue.tasks == {}
    assert echo.fired == []


async def test_trigger_without_the_scope_is_refused(local_tc: Running, echo: Hook) -> None:
    credentials = add_client(local_tc.tc, "project/other", "hooks:trigger-hook:project-test/other")
    with pytest.raises(TaskclusterRestFailure) as caught:
        await hooks_client(local_tc, credentials).triggerHook(GROUP, HOOK, {"message": "x"})
    assert caught.value.status_code == 403
    assert caught.value.body["code"] == "InsufficientScopes"
    assert TRIGGER_SCOPE in caught.value.body["message"]
    assert local_tc.tc.queue.tasks == {}
    assert echo.fired == []
    anonymous = tc_aio.Hooks({"rootUrl": local_tc.tc.root_url}, session=local_tc.session)
    with pytest.raises(TaskclusterRestFailure) as unsigned:
        await anonymous.triggerHook(GROUP, HOOK, {"message": "x"})
    assert unsigned.value.status_code == 403


async def test_a_payload_that_is_not_an_object_is_refused(local_tc: Running, echo: Hook) -> None:
    tc = local_tc.tc
    tc.roles["anonymous"].append(TRIGGER_SCOPE)  # so the body, not the caller, is refused
    url = f"{tc.root_url}/api/hooks/v1/hooks/{GROUP}/{HOOK}/trigger"
    async with local_tc.session.post(url, data=json.dumps(["message"])) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (400, "InputValidationError")
    assert tc.queue.tasks == {}
    assert echo.fired == []


def test_the_default_trigger_schema_accepts_only_an_empty_payload() -> None:
    tc = LocalTaskcluster()
    tc.hooks.add(Hook("g", "h", {**echo_template(), "payload": {}}))
    assert tc.hooks.hooks[("g", "h")].trigger_schema == DEFAULT_TRIGGER_SCHEMA
    with pytest.raises(TaskclusterError) as caught:
        tc.hooks.trigger("g", "h", {"message": "x"}, "me")
    assert (caught.value.status, caught.value.code) == (400, "InputError")
    assert "must NOT have additional properties" in caught.value.message
    assert tc.hooks.trigger("g", "h", {}, "me")["taskId"] in tc.queue.tasks


def test_a_trigger_schema_that_is_no_schema_is_refused() -> None:
    hooks = Hooks(LocalTaskcluster().queue)
    with pytest.raises(TaskclusterError, match="triggerSchema is not a valid JSON schema"):
        hooks.add(Hook("g", "h", {}, trigger_schema={"type": "thing"}))
    assert hooks.hooks == {}


def test_render_and_queue_failures_are_input_errors_naming_the_cause() -> None:
    tc = LocalTaskcluster()
    open_schema = {"type": "object"}
    tc.hooks.add(Hook("g", "bad-template", {"$eval": "nope.x"}, trigger_schema=open_schema))
    with pytest.raises(TaskclusterError) as render:
        tc.hooks.trigger("g", "bad-template", {}, "me")
    assert (render.value.code, render.value.status) == ("InputError", 400)
    assert render.value.message.startswith("While firing hook:")
    broken = {**echo_template(), "workerType": "Not A Worker Type"}
    tc.hooks.add(Hook("g", "bad-task", broken, trigger_schema=open_schema))
    with pytest.raises(TaskclusterError) as queue:
        tc.hooks.trigger("g", "bad-task", {"message": "x"}, "me")
    assert queue.value.code == "InputError"
    assert queue.value.message.startswith("While calling createTask: InputValidationError")
    assert tc.queue.tasks == {}


def test_a_template_rendering_null_creates_nothing() -> None:
    tc = LocalTaskcluster()
    template = {"$if": "payload.go", "then": echo_template()}
    tc.hooks.add(Hook("g", "maybe", template, trigger_schema={"type": "object"}))
    assert tc.hooks.trigger("g", "maybe", {"go": False}, "me") == {}
    assert tc.queue.tasks == {}
    assert tc.hooks.trigger("g", "maybe", {"go": True, "message": "m"}, "me")["taskId"]


def test_a_given_task_id_must_be_a_slugid() -> None:
    tc = LocalTaskcluster()
    tc.hooks.add(Hook("g", "h", echo_template(), trigger_schema={"type": "object"}))
    task_id = new_id()
    assert tc.hooks.trigger("g", "h", {"message": "m", "taskId": task_id}, "me") == {
        "taskId": task_id,
        "status": {"taskId": task_id},
    }
    with pytest.raises(TaskclusterError, match="not a slugid"):
        tc.hooks.trigger("g", "h", {"message": "m", "taskId": "short"}, "me")


# --- in-tree action hooks --------------------------------------------------------------------


def gecko_payload(name: str, **user: Any) -> dict[str, Any]:
    """The hook payload Treeherder renders from the real Gecko actions.json."""
    actions = load_reference_json("taskgraph", "gecko-autoland-actions.json")
    action = next(a for a in actions["actions"] if a["name"] == name)
    context = {"taskGroupId": "f7Jj_h6MTEKr5Ln_7aFqbw", "taskId": None, "input": {}, **user}
    rendered: dict[str, Any] = jsone.render(action["hookPayload"], context)
    return rendered


def test_the_action_trigger_schema_is_a_schema_the_real_payloads_match() -> None:
    schema = action_trigger_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    for name in ("add-new-jobs", "retrigger-multiple", "cancel-all"):
        assert trigger_problems(schema, gecko_payload(name, input={"tasks": []})) == []
    assert trigger_problems(schema, gecko_payload("cancel", taskId=new_id())) == []


def test_the_action_trigger_schema_refuses_what_the_hook_cannot_use() -> None:
    schema = action_trigger_schema()
    good = gecko_payload("add-new-jobs", input={"tasks": ["x"]})
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "extra": 1}, "data must NOT have additional properties ('extra')"),
        ({"decision": good["decision"]}, "data must have required property 'user'"),
        (
            {**good, "user": {**good["user"], "taskId": "not-a-slug"}},
            "data/user/taskId",
        ),
        (
            {**good, "user": {**good["user"], "who": "me"}},
            "data/user must NOT have additional properties ('who')",
        ),
        (
            {**good, "decision": {**good["decision"], "push": {"revision": "abc"}}},
            "data/decision/push must have required property 'owner'",
        ),
    ]
    for payload, expected in cases:
        problems = trigger_problems(schema, payload)
        assert any(expected in problem for problem in problems), (expected, problems)


def test_the_action_hook_renders_a_gecko_like_action_task() -> None:
    tc = LocalTaskcluster()
    tc.hooks.add(action_hook("project-gecko", "in-tree-action-3-generic/9353e8f146"))
    decision = "f7Jj_h6MTEKr5Ln_7aFqbw"
    answer = tc.hooks.trigger(
        "project-gecko",
        "in-tree-action-3-generic/9353e8f146",
        gecko_payload("add-new-jobs", input={"tasks": ["a"], "times": 1}),
        "mozilla-auth0/ad|Mozilla-LDAP|someone",
    )
    task = tc.queue.get(answer["taskId"]).definition
    own = answer["taskId"]
    assert task["routes"] == [
        f"index.gecko.v2.autoland.pushlog-id.109591.actions.{own}",
        f"index.gecko.v2.autoland.revision.c7766d0b4a121985a8b07e6721d66ccab57bbf76.actions.{own}",
    ]
    assert task["taskGroupId"] == decision
    assert task["schedulerId"] == "gecko-level-3"
    assert task["extra"]["parent"] == decision
    assert task["extra"]["action"]["context"]["clientId"] == "mozilla-auth0/ad|Mozilla-LDAP|someone"
    assert (
        "Action triggered by clientID `mozilla-auth0/ad|Mozilla-LDAP|someone`"
        in (task["metadata"]["description"])
    )
    env = task["payload"]["env"]
    assert (env["ACTION_CALLBACK"], env["ACTION_TASK_GROUP_ID"]) == ("add-new-jobs", decision)
    assert json.loads(env["ACTION_INPUT"]) == {"tasks": ["a"], "times": 1}
    assert json.loads(env["ACTION_TASK_ID"]) is None
