"""Finding a seeded push's decision task and reading its artifacts through the real client."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.graph import GraphCache, Resolver, plan
from bot.localtc.seed import SeededPush, seed_push
from bot.metrics import GRAPH_CACHE_BYTES, GRAPH_CACHE_HITS, GRAPH_LOADS
from bot.tc.decision import DecisionNotFoundError, DecisionReader, revision_in
from grammar import Name
from tests.conftest import load_reference_json
from tests.tcfixtures import Running, local_tc

__all__ = ["local_tc"]


def reader(running: Running) -> DecisionReader:
    return DecisionReader(running.index(), running.queue(), running.session, GraphCache(max_mb=512))


def seeded(running: Running) -> SeededPush:
    return seed_push(running.tc, tasks=1200, seed=3)


async def test_find_by_revision_and_latest(local_tc: Running) -> None:
    push = seeded(local_tc)
    decisions = reader(local_tc)
    assert await decisions.find(push.project, push.revision) == push.decision_task_id
    assert await decisions.find(push.project, None) == push.decision_task_id
    with pytest.raises(DecisionNotFoundError) as caught:
        await decisions.find(push.project, "0" * 40)
    assert f"`gecko.v2.{push.project}.revision.{'0' * 40}.taskgraph.decision`" in str(caught.value)


async def test_the_revision_of_the_latest_push_is_read_from_its_decision_task(
    local_tc: Running,
) -> None:
    push = seeded(local_tc)
    decisions = reader(local_tc)
    assert await decisions.revision_of(push.decision_task_id) == push.revision
    assert await decisions.revision_of("AAAAAAAAAAAAAAAAAAAAAA") is None  # no such task: unknown


def test_revision_in_a_real_decision_task() -> None:
    definition = load_reference_json("taskgraph", "gecko-try-decision-task.json")
    assert revision_in(definition) == "c5429a8112e41dfabe22da0d7d0876fe05a17e67"
    # Without index routes, the checkout's *_HEAD_REV says it; with neither, nothing does.
    env_only = {**definition, "routes": ["notify.email.someone@example.com.on-failed"]}
    assert revision_in(env_only) == definition["payload"]["env"]["GECKO_HEAD_REV"]
    assert revision_in({"routes": [], "payload": {"env": {"GECKO_HEAD_REV": "tip"}}}) is None


async def test_graph_and_label_to_taskid_come_from_the_artifacts(local_tc: Running) -> None:
    push = seeded(local_tc)
    decisions = reader(local_tc)
    graph = await decisions.graph(push.decision_task_id)
    assert graph.labels == list(push.push.graph)
    assert await decisions.graph(push.decision_task_id) is graph  # cached
    existing = await decisions.label_to_taskid(push.decision_task_id)
    assert existing == push.push.label_to_taskid
    actions = json.loads(await decisions.artifact(push.decision_task_id, "public/actions.json"))
    assert {a["name"] for a in actions["actions"]} >= {
        "add-new-jobs",
        "retrigger-multiple",
        "cancel",
    }
    assert all(
        a["hookPayload"]["decision"]["action"]["taskGroupId"] == push.decision_task_id
        for a in actions["actions"]
    )


async def test_a_loaded_graph_is_packed_counted_and_given_back(local_tc: Running) -> None:
    """Loaded while it downloads (gzipped, indented as taskgraph writes it), kept, then
    packed: the cache counts a fraction of the document, the bodies read the same."""
    push = seeded(local_tc)
    decisions = reader(local_tc)
    loads, hits = GRAPH_LOADS._value.get(), GRAPH_CACHE_HITS._value.get()
    graph = await decisions.graph(push.decision_task_id)
    before = {label: graph.body(label) for label in graph.labels[:50]}
    document = graph.nbytes
    assert decisions.cache.used >= document  # the document is held until packed
    await asyncio.gather(*decisions._packing)
    assert graph.bodies.compact
    assert decisions.cache.used < document / 2
    assert {label: graph.body(label) for label in graph.labels[:50]} == before
    assert await decisions.graph(push.decision_task_id) is graph
    assert GRAPH_LOADS._value.get() == loads + 1
    assert GRAPH_CACHE_HITS._value.get() == hits + 1
    assert GRAPH_CACHE_BYTES._value.get() == decisions.cache.used


async def test_the_seeded_push_ran_its_label_to_taskid(local_tc: Running) -> None:
    push = seeded(local_tc)
    queue = local_tc.queue()
    states = {}
    for label, task_id in list(push.push.label_to_taskid.items())[:50]:
        states[label] = (await queue.status(task_id))["status"]["state"]
    assert set(states.values()) <= {"completed", "failed"}
    assert push.failed
    failed_id = push.push.label_to_taskid[push.failed[0]]
    assert (await queue.status(failed_id))["status"]["state"] == "failed"


async def test_a_plan_on_the_seeded_push_reuses_what_ran(local_tc: Running) -> None:
    push = seeded(local_tc)
    decisions = reader(local_tc)
    graph = await decisions.graph(push.decision_task_id)
    existing = await decisions.label_to_taskid(push.decision_task_id)
    test = next(label for label in graph.labels if label.startswith("test-"))
    labels = Resolver(graph).resolve([Name(test)]).labels
    result = plan(graph, labels, existing, request_id="r1")
    assert list(result.create) == [test]
    build = graph.entry(test).dependencies["build"]
    assert result.reuse[build] == existing[build]


async def test_a_pushs_parameters_are_read_once_and_kept(
    local_tc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walking back over pushes reads each one's parameters; reading them again (a culprit
    search's answer, `pushes`) asks the Queue nothing more."""
    push = seeded(local_tc)
    decisions = reader(local_tc)
    read: list[str] = []
    real = decisions.artifact

    async def counted(task_id: str, name: str, *, limit: int | None = None) -> bytes:
        read.append(name)
        return await real(task_id, name, limit=limit)

    monkeypatch.setattr(decisions, "artifact", counted)
    first = await decisions.parameters(push.decision_task_id)
    assert first["head_rev"] == push.revision
    assert await decisions.parameters(push.decision_task_id) == first
    assert read == ["public/parameters.yml"]
