"""Action mode: picking an action by the task's tags, checking input and grant, rendering."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jsone
import pytest

from bot.tc.actions import ActionError, applies, check_grant, find_action, render_action
from bot.tc.schema_check import check_input_isolated
from tests.conftest import load_reference_json

GROUP = "f7Jj_h6MTEKr5Ln_7aFqbw"
TASK = "abcdefghQRCdefghijklmA"


def gecko_actions() -> dict[str, Any]:
    return load_reference_json("taskgraph", "gecko-autoland-actions.json")


def test_the_action_for_a_task_is_the_first_whose_context_its_tags_match() -> None:
    actions = gecko_actions()
    retriggers = [a for a in actions["actions"] if a["name"] == "retrigger"]
    assert len(retriggers) == 3  # the real file has three, for different kinds of task
    decision = find_action(actions, "retrigger", tags={"kind": "decision-task"})
    assert decision["context"] == retriggers[0]["context"]
    assert "schema" not in decision or not decision["schema"].get("properties")
    opted_in = find_action(actions, "retrigger", tags={"kind": "test", "retrigger": "true"})
    assert opted_in["context"] == [{"retrigger": "true"}]
    build = find_action(actions, "retrigger", tags={"kind": "build"})
    assert build["context"] == [{}]  # any task
    assert set(build["schema"]["properties"]) == {"downstream", "force", "times"}
    # an action of the task group is not one of a task, and the other way round
    with pytest.raises(ActionError, match="cannot run on a task with these tags"):
        find_action(actions, "add-new-jobs", tags={"kind": "test"})
    with pytest.raises(ActionError, match="cannot run on the push"):
        find_action(actions, "retrigger", tags=None)
    # a tag-set matches only when every one of its tags has the same value
    custom = find_action(actions, "retrigger-custom", tags={"test-type": "mochitest"})
    assert custom["name"] == "retrigger-custom"
    with pytest.raises(ActionError):
        find_action(actions, "retrigger-custom", tags={"test-type": "xpcshell"})
    assert not applies({"context": [{"a": "1", "b": "2"}]}, {"a": "1"})
    assert applies({"context": [{"a": "1", "b": "2"}]}, {"a": "1", "b": "2", "c": "3"})


@pytest.mark.parametrize("index", range(17))
def test_every_hook_action_of_the_real_file_renders_as_treeherder_renders_it(index: int) -> None:
    """Treeherder renders ``hookPayload`` with JSON-e in the context {taskGroupId, taskId,
    input} over the file's variables; the bot's payload must be that, for the action the
    task's tags pick."""
    actions = gecko_actions()
    action = actions["actions"][index]
    on_task = bool(action["context"])
    tags = dict(action["context"][0]) if on_task else None
    given: dict[str, Any] = {
        "add-new-jobs": {"tasks": ["test-linux1804-64/opt-mochitest-1"], "times": 2},
        "retrigger-multiple": {"requests": [{"tasks": ["build-linux64/opt"], "times": 3}]},
        "retrigger-custom": {"path": "dom/tests/mochitest"},  # its schema requires a path
    }.get(action["name"], {})
    picked = find_action(actions, action["name"], tags=tags)
    rendered = render_action(
        actions,
        action["name"],
        task_group_id=GROUP,
        input=given,
        task_id=TASK if on_task else None,
        task_tags=tags,
    )
    context = {
        **actions["variables"],
        "taskGroupId": GROUP,
        "taskId": TASK if on_task else None,
        "input": given,
    }
    assert rendered.payload == jsone.render(picked["hookPayload"], context)
    assert rendered.payload["user"] == {
        "input": given,
        "taskGroupId": GROUP,
        "taskId": TASK if on_task else None,
    }
    assert (
        rendered.payload["decision"]["action"]["cb_name"]
        == picked["hookPayload"]["decision"]["action"]["cb_name"]
    )
    assert (rendered.hook_group_id, rendered.hook_id) == (picked["hookGroupId"], picked["hookId"])


def test_input_is_checked_against_the_action_schema_before_any_hook_runs() -> None:
    actions = gecko_actions()
    for times, why in ((0, "times: 0 is less than the minimum of 1"), (101, "times: 101")):
        with pytest.raises(ActionError, match=why):
            render_action(
                actions,
                "add-new-jobs",
                task_group_id=GROUP,
                input={"tasks": ["a"], "times": times},
            )
    with pytest.raises(ActionError, match="tasks/0"):
        render_action(
            actions, "add-new-jobs", task_group_id=GROUP, input={"tasks": [3], "times": 1}
        )


def test_a_hook_the_decision_task_was_not_granted_is_refused() -> None:
    actions = gecko_actions()
    rendered = render_action(
        actions, "add-new-jobs", task_group_id=GROUP, input={"tasks": ["a"], "times": 1}
    )
    assert rendered.grant == "in-tree:hook-action:project-gecko/in-tree-action-3-generic/9353e8f146"
    check_grant(["in-tree:hook-action:project-gecko/in-tree-action-3-*"], rendered)
    check_grant([rendered.grant], rendered)
    # the real try decision task: level 1 hooks only
    try_decision = load_reference_json("taskgraph", "gecko-try-decision-task.json")
    with pytest.raises(ActionError, match="was not granted"):
        check_grant(try_decision["scopes"], rendered)
    with pytest.raises(ActionError, match="was not granted"):
        check_grant(
            ["in-tree:hook-action:project-gecko/in-tree-action-3-generic/9353e8f14"], rendered
        )


def test_a_schema_slip_that_refuses_every_key_does_not_block_real_retriggers() -> None:
    """Gecko's retrigger-multiple schema puts ``additionalProperties: false`` beside no
    ``properties`` (every key refused) and its callback never validates: Treeherder's
    retriggers work, so the bot's must too; a real rule of the same schema still holds."""
    actions = gecko_actions()
    given = {"requests": [{"tasks": ["build-linux64/opt"], "times": 3}]}
    rendered = render_action(actions, "retrigger-multiple", task_group_id=GROUP, input=given)
    assert rendered.payload["user"]["input"] == given
    with pytest.raises(ActionError, match="requests: 'x' is not of type 'array'"):
        render_action(actions, "retrigger-multiple", task_group_id=GROUP, input={"requests": "x"})
    strict = {
        "version": 1,
        "variables": {},
        "actions": [
            {
                "name": "add-new-jobs",
                "kind": "hook",
                "context": [],
                "hookGroupId": "g",
                "hookId": "h",
                "hookPayload": {"input": {"$eval": "input"}},
                "schema": {
                    "type": "object",
                    "properties": {"tasks": {"type": "array"}},
                    "additionalProperties": False,
                },
            }
        ],
    }
    with pytest.raises(ActionError, match="'times' was unexpected"):
        render_action(strict, "add-new-jobs", task_group_id=GROUP, input={"tasks": [], "times": 1})


def with_schema(schema: Any) -> dict[str, Any]:
    actions = gecko_actions()
    for action in actions["actions"]:
        if action["name"] == "add-new-jobs":
            action["schema"] = schema
    return actions


async def test_a_schema_reference_is_never_fetched_nor_read(tmp_path: Any) -> None:
    """A try push may write any actions.json: a `$ref` to a URL (a cloud metadata service)
    or a file is refused, and nothing is fetched or read."""
    connections = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    secret = tmp_path / "secret.json"
    secret.write_text('{"t": {"enum": ["SECRET-VALUE"]}}')
    given = {"tasks": ["a"], "times": 1}
    try:
        for ref in (f"http://127.0.0.1:{port}/latest/meta-data/", f"{secret.as_uri()}#/t"):
            actions = with_schema({"$ref": ref})
            with pytest.raises(ActionError, match="the bot fetches nothing from outside a schema"):
                render_action(actions, "add-new-jobs", task_group_id=GROUP, input=given)
            nested = with_schema({"properties": {"tasks": {"items": {"$ref": ref}}}})
            with pytest.raises(ActionError) as refused:
                render_action(nested, "add-new-jobs", task_group_id=GROUP, input=given)
            assert "SECRET-VALUE" not in str(refused.value)
        await asyncio.sleep(0.05)
        assert connections == []
    finally:
        server.close()
    # a reference inside the schema itself still works
    inside = with_schema(
        {"definitions": {"n": {"minimum": 1}}, "properties": {"times": {"$ref": "#/definitions/n"}}}
    )
    with pytest.raises(ActionError, match="times: 0 is less than the minimum of 1"):
        render_action(inside, "add-new-jobs", task_group_id=GROUP, input={"times": 0})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda a: a.update(actions={}), "has no list of actions"),
        (lambda a: a.update(actions=[1, 2]), "has no `add-new-jobs` action"),
        (lambda a: a.update(variables=[1]), "`variables` that are not an object"),
        (lambda a: add_new_jobs(a).pop("hookGroupId"), "names no hook"),
        (lambda a: add_new_jobs(a).update(hookPayload=None), "has no hookPayload object"),
        (lambda a: add_new_jobs(a).update(kind="task"), "is not a hook action (kind `task`)"),
        (lambda a: add_new_jobs(a).update(context="x"), "cannot run on the push"),
    ],
)
def test_a_malformed_actions_json_is_refused_with_what_is_wrong(change: Any, said: str) -> None:
    actions = gecko_actions()
    change(actions)
    with pytest.raises(ActionError, match=re.escape(said)):
        render_action(
            actions, "add-new-jobs", task_group_id=GROUP, input={"tasks": ["a"], "times": 1}
        )


def add_new_jobs(actions: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in actions["actions"] if a["name"] == "add-new-jobs")


def doubling(levels: int) -> dict[str, Any]:
    """A 2 kB schema whose references double at each level: 2**levels checks of one value."""
    definitions: dict[str, Any] = {"d0": {"type": "integer"}}
    for n in range(1, levels + 1):
        ref = {"$ref": f"#/definitions/d{n - 1}"}
        definitions[f"d{n}"] = {"allOf": [ref, ref]}
    return {
        "definitions": definitions,
        "properties": {"times": {"$ref": f"#/definitions/d{levels}"}},
    }


async def test_a_schema_that_would_take_hours_is_stopped_and_the_bot_keeps_answering() -> None:
    """Checked in a child process given seconds: the event loop keeps turning meanwhile."""
    action = {"name": "add-new-jobs", "schema": doubling(40)}
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    try:
        with pytest.raises(ActionError, match="took more than 1 s to check its input"):
            await check_input_isolated(action, {"tasks": [], "times": 1}, seconds=1.0)
    finally:
        ticker.cancel()
    assert ticks > 20  # the loop was free while the child worked
    backtracking = {
        "name": "add-new-jobs",
        "schema": {"properties": {"tasks": {"items": {"pattern": "^(x+x+)+y$"}}}},
    }
    with pytest.raises(ActionError, match="took more than 1 s"):
        await check_input_isolated(backtracking, {"tasks": ["x" * 40]}, seconds=1.0)


async def test_the_child_gives_the_same_verdicts_as_the_check_itself() -> None:
    actions = gecko_actions()
    action = add_new_jobs(actions)
    await check_input_isolated(action, {"tasks": ["a"], "times": 3})
    with pytest.raises(ActionError, match="times: 0 is less than the minimum of 1"):
        await check_input_isolated(action, {"tasks": ["a"], "times": 0})
    huge = {"name": "x", "schema": {"description": "d" * 300_000}}
    with pytest.raises(ActionError, match="larger than"):
        await check_input_isolated(huge, {})
