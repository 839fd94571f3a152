"""Action-mode scheduling: render an in-tree action from actions.json, trigger its hook."""

from __future__ import annotations

import json

import pytest
import taskcluster.aio as tc_aio

from bot.localtc.hooks import action_hook
from bot.localtc.seed import seed_push
from bot.tc.actions import ActionError, render_action, trigger
from tests.conftest import load_reference_json
from tests.tcfixtures import Running, local_tc

__all__ = ["local_tc"]


def test_render_add_new_jobs_on_the_real_gecko_actions_json() -> None:
    actions = load_reference_json("taskgraph", "gecko-autoland-actions.json")
    rendered = render_action(
        actions,
        "add-new-jobs",
        task_group_id="f7Jj_h6MTEKr5Ln_7aFqbw",
        input={"tasks": ["test-linux1804-64/opt-mochitest-1"], "times": 2},
    )
    assert (rendered.hook_group_id, rendered.hook_id) == (
        "project-gecko",
        "in-tree-action-3-generic/9353e8f146",
    )
    assert rendered.payload["user"] == {
        "input": {"tasks": ["test-linux1804-64/opt-mochitest-1"], "times": 2},
        "taskGroupId": "f7Jj_h6MTEKr5Ln_7aFqbw",
        "taskId": None,
    }
    assert rendered.payload["decision"]["action"]["cb_name"] == "add-new-jobs"
    assert (
        rendered.payload["decision"]["push"]["revision"]
        == "c7766d0b4a121985a8b07e6721d66ccab57bbf76"
    )
    assert rendered.permission == "generic"


def test_task_context_picks_the_right_action() -> None:
    actions = load_reference_json("taskgraph", "gecko-autoland-actions.json")
    rendered = render_action(
        actions,
        "cancel",
        task_group_id="f7Jj_h6MTEKr5Ln_7aFqbw",
        input={},
        task_id="abcdefghQRCdefghijklmA",
    )
    assert rendered.payload["user"]["taskId"] == "abcdefghQRCdefghijklmA"
    with pytest.raises(ActionError, match="cannot run on the push"):
        render_action(actions, "cancel", task_group_id="x", input={})
    with pytest.raises(ActionError, match="no `frobnicate` action"):
        render_action(actions, "frobnicate", task_group_id="x", input={})
    with pytest.raises(ActionError, match="version 2"):
        render_action({**actions, "version": 2}, "cancel", task_group_id="x", input={})


async def test_triggering_the_hook_creates_the_action_task(local_tc: Running) -> None:
    tc = local_tc.tc
    push = seed_push(tc, tasks=800, seed=5)
    actions = json.loads(
        tc.queue.artifact(push.decision_task_id, None, "public/actions.json").content
    )
    add_new = next(a for a in actions["actions"] if a["name"] == "add-new-jobs")
    hook = action_hook(add_new["hookGroupId"], add_new["hookId"])
    tc.hooks.add(hook)
    labels = [label for label in push.push.graph if label.startswith("test-")][:2]
    rendered = render_action(
        actions,
        "add-new-jobs",
        task_group_id=push.decision_task_id,
        input={"tasks": labels, "times": 1},
    )
    hooks = tc_aio.Hooks(local_tc.options(), session=local_tc.session)
    action_task_id = await trigger(hooks, rendered)
    assert hook.fired == [rendered.payload]
    task = await local_tc.queue().task(action_task_id)
    assert task["taskGroupId"] == push.decision_task_id
    assert task["extra"]["action"] == {
        "name": "add-new-jobs",
        "context": {
            "taskGroupId": push.decision_task_id,
            "taskId": None,
            "input": {"tasks": labels, "times": 1},
            "clientId": tc.root_client.client_id,
        },
    }
    assert json.loads(task["payload"]["env"]["ACTION_INPUT"]) == {"tasks": labels, "times": 1}
