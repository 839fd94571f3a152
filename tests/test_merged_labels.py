"""The push's merged label-to-taskid equals taskgraph's ``fetch_graph_and_labels`` on a push
with action tasks (both index namespaces) and a cron task, in the local Taskcluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsone
import msgspec
import pytest
import slugid

from bot.graph import GraphCache
from bot.localtc.callbacks import run_action
from bot.localtc.queue import Artifact
from bot.localtc.seed import SeededPush, register_action_hooks, seed_push
from bot.tc.decision import DecisionReader
from tests.tcfixtures import Running, local_tc, task_definition, when

__all__ = ["local_tc"]


def add_new_jobs(tc: Any, push: SeededPush, labels: list[str], times: int) -> str:
    """Trigger the push's add-new-jobs hook and run its action task to the end."""
    actions = json.loads(
        tc.queue.artifact(push.decision_task_id, None, "public/actions.json").content
    )
    action = next(a for a in actions["actions"] if a["name"] == "add-new-jobs")
    key = (action["hookGroupId"], action["hookId"])
    register_action_hooks(tc, push)
    context = {
        "taskGroupId": push.decision_task_id,
        "taskId": None,
        "input": {"tasks": labels, "times": times},
    }
    payload = jsone.render(action["hookPayload"], context)
    task_id = tc.hooks.trigger(*key, payload, "static/taskbot/root")["taskId"]
    assert run_action(tc, task_id) == "completed"
    return str(task_id)


def cron_task(tc: Any, push: SeededPush, label_to_taskid: dict[str, str]) -> str:
    """A completed cron task indexed for the push's revision, with its label-to-taskid."""
    task_id = slugid.nice()
    queue = tc.queue
    expires = when(30 * 86400)
    queue.create(task_id, queue.check_definition(task_id, task_definition(expires=expires)))
    run_id = queue.claim(task_id, "local", "cron")
    queue.put_artifact(
        task_id,
        run_id,
        Artifact(
            "public/label-to-taskid.json",
            msgspec.json.encode(label_to_taskid),
            "application/json",
            expires,
        ),
    )
    queue.resolve(task_id, run_id, "completed")
    tc.index.insert(
        f"gecko.v2.{push.project}.revision.{push.revision}.cron.{task_id}", task_id, 0, {}, expires
    )
    return task_id


def taskgraph_merge(
    monkeypatch: pytest.MonkeyPatch, running: Running, push: SeededPush
) -> dict[str, str]:
    from taskgraph.actions.util import fetch_graph_and_labels
    from taskgraph.util import taskcluster as tg

    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", running.tc.root_url)
    credentials = running.tc.credentials()
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", credentials["clientId"])
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", credentials["accessToken"])
    for cached in (tg.get_root_url, tg.get_taskcluster_client):
        cached.cache_clear()
    parameters = {
        "project": push.project,
        "pushlog_id": "1",
        "head_rev": push.revision,
        "repository_type": "hg",
    }
    try:
        _, _, merged = fetch_graph_and_labels(
            parameters, {"trust-domain": push.trust_domain}, task_group_id=push.decision_task_id
        )
    finally:
        for cached in (tg.get_root_url, tg.get_taskcluster_client):
            cached.cache_clear()
    return dict(merged)


async def test_merged_labels_equal_taskgraph_fetch_graph_and_labels(
    local_tc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    tc = local_tc.tc
    push = seed_push(tc, tasks=600, seed=1)  # pushlog id 1
    new = [
        x for x in push.push.graph if x.startswith("test-") and x not in push.push.label_to_taskid
    ]
    build = next(d for d in push.push.graph[new[0]]["dependencies"].values() if "build" in d)
    first = add_new_jobs(tc, push, [new[0], build], times=1)
    second = add_new_jobs(tc, push, [new[1]], times=2)
    cron = cron_task(tc, push, {new[2]: slugid.nice()})
    assert first != second != cron
    reader = DecisionReader(local_tc.index(), local_tc.queue(), local_tc.session, GraphCache(64))
    ours = await reader.merged_labels(push.decision_task_id, push.project)
    theirs = await asyncio.to_thread(taskgraph_merge, monkeypatch, local_tc, push)
    assert ours == theirs
    # what the actions and the cron task added is there, beyond the decision's own
    assert ours[build] != push.push.label_to_taskid[build]
    assert {new[0], new[1], new[2]} <= set(ours)
    assert set(push.push.label_to_taskid) <= set(ours)


async def test_an_action_still_running_adds_nothing_yet_and_a_new_one_is_seen_later(
    local_tc: Running,
) -> None:
    tc = local_tc.tc
    push = seed_push(tc, tasks=600, seed=2)
    reader = DecisionReader(
        local_tc.index(), local_tc.queue(), local_tc.session, GraphCache(64), fresh_for=0.0
    )
    before = await reader.merged_labels(push.decision_task_id, push.project)
    assert before == push.push.label_to_taskid
    label = next(x for x in push.push.graph if x.startswith("test-") and x not in before)
    add_new_jobs(tc, push, [label], times=1)
    after = await reader.merged_labels(push.decision_task_id, push.project)
    assert label in after
