"""The local Taskcluster against the real API references and JSON schemas in ../shared."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from bot.localtc import validation
from bot.localtc.queue import Artifact
from bot.localtc.server import ENDPOINTS
from tests.conftest import load_reference_json
from tests.tcfixtures import Running, local_tc, new_id, task_definition, when
from tests.tcschemas import errors

__all__ = ["local_tc"]


def reference_entries(service: str) -> dict[str, dict[str, Any]]:
    api = load_reference_json("taskcluster", "api-references", service, "v1", "api.json")
    return {entry["name"]: entry for entry in api["entries"]}


# ../shared holds the Queue's and the Index's API references; Hooks has none there.
REFERENCED = [e for e in ENDPOINTS if e.service in ("queue", "index")]


@pytest.mark.parametrize("endpoint", REFERENCED, ids=lambda e: f"{e.service}.{e.name}")
def test_routes_methods_and_scopes_match_the_reference(endpoint: Any) -> None:
    entry = reference_entries(endpoint.service)[endpoint.name]
    assert endpoint.method == entry["method"]
    assert endpoint.route == entry["route"]
    assert endpoint.scopes == entry.get("scopes")


def schema_of(service: str, name: str, key: str) -> str:
    reference = reference_entries(service)[name][key]
    return f"/schemas/{service}/{reference.split('#')[0]}"


async def test_responses_validate_against_their_output_schemas(local_tc: Running) -> None:
    tc, queue, index = local_tc.tc, local_tc.queue(), local_tc.index()
    group = new_id()
    a, b = group, new_id()
    definition = task_definition(
        taskGroupId=group, routes=["index.project.test.latest"], tags={"kind": "test"}
    )
    created = await queue.createTask(a, definition)
    assert errors(schema_of("queue", "createTask", "output"), created) == []
    assert errors(schema_of("queue", "createTask", "input"), definition) == []
    await queue.createTask(b, task_definition(taskGroupId=group, dependencies=[a]))
    assert errors(schema_of("queue", "task", "output"), await queue.task(a)) == []
    assert errors(schema_of("queue", "status", "output"), await queue.status(b)) == []
    run = tc.queue.claim(a, "local", "w")
    tc.queue.put_artifact(a, run, Artifact("public/a.txt", b"a", "text/plain", when(3600)))
    artifact = await queue.getLatestArtifact(a, "public/a.txt")
    assert errors(schema_of("queue", "getLatestArtifact", "output"), artifact) == []
    completed = await queue.reportCompleted(a, str(run))
    assert errors(schema_of("queue", "reportCompleted", "output"), completed) == []
    listed = await queue.listTaskGroup(group)
    assert errors(schema_of("queue", "listTaskGroup", "output"), listed) == []
    found = await index.findTask("project.test.latest")
    assert errors(schema_of("index", "findTask", "output"), found) == []
    insert = {"taskId": a, "rank": 1, "data": {}, "expires": when(3600)}
    assert errors(schema_of("index", "insertTask", "input"), insert) == []
    assert (
        errors(schema_of("index", "insertTask", "output"), await index.insertTask("p.q", insert))
        == []
    )
    for cancelled in [await queue.cancelTask(b)]:
        assert errors(schema_of("queue", "cancelTask", "output"), cancelled) == []


async def test_artifact_lists_page_and_validate_as_the_real_queues(local_tc: Running) -> None:
    from taskcluster.exceptions import TaskclusterRestFailure

    tc, queue = local_tc.tc, local_tc.queue()
    task = new_id()
    await queue.createTask(task, task_definition(taskGroupId=task))
    run = tc.queue.claim(task, "local", "w")
    for name in ("public/logs/live_backing.log", "public/test_info/x_errorsummary.log"):
        tc.queue.put_artifact(task, run, Artifact(name, b"x", "text/plain", when(3600)))
    first = await queue.listArtifacts(task, str(run), query={"limit": "1"})
    assert errors(schema_of("queue", "listArtifacts", "output"), first) == []
    assert len(first["artifacts"]) == 1
    token = first["continuationToken"]
    rest = await queue.listArtifacts(task, str(run), query={"continuationToken": token})
    names = [a["name"] for a in first["artifacts"] + rest["artifacts"]]
    assert sorted(names) == ["public/logs/live_backing.log", "public/test_info/x_errorsummary.log"]
    assert "continuationToken" not in rest
    latest = await queue.listLatestArtifacts(task)
    assert errors(schema_of("queue", "listLatestArtifacts", "output"), latest) == []
    assert len(latest["artifacts"]) == 2
    with pytest.raises(TaskclusterRestFailure) as missing:
        await queue.listArtifacts(task, "3")
    assert missing.value.status_code == 404


async def test_pulse_messages_match_the_exchange_definitions(local_tc: Running) -> None:
    tc, queue = local_tc.tc, local_tc.queue()
    exchanges = load_reference_json(
        "taskcluster", "api-references", "queue", "v1", "exchanges.json"
    )
    by_name = {exchanges["exchangePrefix"] + e["exchange"]: e for e in exchanges["entries"]}
    group = new_id()
    a, b, c = group, new_id(), new_id()
    await queue.createTask(
        a, task_definition(taskGroupId=group, routes=["index.x.y", "tc-treeherder.v2.try.abc"])
    )
    await queue.createTask(b, task_definition(taskGroupId=group, dependencies=[a]))
    await queue.createTask(c, task_definition(taskGroupId=group))
    run = tc.queue.claim(a, "worker-group", "worker-1")
    await queue.reportCompleted(a, str(run))
    run = tc.queue.claim(b, "worker-group", "worker-2")
    await queue.reportFailed(b, str(run))
    await queue.cancelTask(c)
    seen = set()
    for exchange, routing_key, cc, message in local_tc.events:
        definition = by_name[exchange]
        seen.add(definition["exchange"])
        assert errors(f"/schemas/queue/{definition['schema'].split('#')[0]}", message) == [], (
            exchange
        )
        parts = routing_key.split(".")
        keys = definition["routingKey"]
        assert len(parts) == len(keys), (exchange, routing_key)
        for part, key in zip(parts, keys, strict=True):
            if key["name"] == "routingKeyKind":
                assert part == "primary"
            elif key.get("required"):
                assert part != "_", (exchange, key["name"])
        if parts[1] == a and exchange.endswith("task-completed"):
            assert cc == ["route.index.x.y", "route.tc-treeherder.v2.try.abc"]
    assert {
        "task-defined",
        "task-pending",
        "task-running",
        "task-completed",
        "task-failed",
        "task-exception",
        "task-group-resolved",
    } <= seen


def mutations(definition: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Definitions near a valid one: each field dropped, retyped, or pushed past a limit."""
    out = []
    odd_values: list[Any] = [
        None,
        1,
        1.5,
        True,
        "",
        "x" * 300,
        [],
        {},
        ["a", "a"],
        "2026-13-45T00:00:00Z",
        "-bad-",
        "a" * 39,
    ]
    for key in [*validation.FIELDS, "unknown"]:
        for value in rng.sample(odd_values, 4):
            changed = copy.deepcopy(definition)
            changed[key] = value
            out.append(changed)
        if key in definition:
            dropped = copy.deepcopy(definition)
            del dropped[key]
            out.append(dropped)
    for key in ("name", "description", "owner", "source"):
        for value in (None, "", "y" * 40000, "ftp://nope"):
            changed = copy.deepcopy(definition)
            changed["metadata"][key] = value
            out.append(changed)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_input_rules_agree_with_the_real_schema(seed: int) -> None:
    rng = random.Random(seed)
    base = task_definition(
        taskGroupId=new_id(),
        dependencies=[new_id()],
        routes=["index.a.b"],
        scopes=["queue:x"],
        tags={"a": "b"},
        extra={"k": 1},
        priority=rng.choice(validation.PRIORITIES),
        requires=rng.choice(validation.REQUIRES),
        retries=rng.randint(0, 49),
        schedulerId="gecko-level-3",
        projectId="gecko",
        expires=when(86400),
    )
    if seed % 2:
        del base["provisionerId"], base["workerType"]
        base["taskQueueId"] = "proj-test/linux"
    schema = "/schemas/queue/v1/create-task-request.json"
    for definition in [base, *mutations(base, rng)]:
        ours = validation.problems(definition)
        theirs = errors(schema, definition)
        assert (ours == []) == (theirs == []), (definition, ours, theirs)
