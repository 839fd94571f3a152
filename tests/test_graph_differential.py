"""The bot's plans equal taskgraph's own (closure + optimize with existing tasks) on real graphs.

taskgraph is run as the add-new-jobs action runs it, with its index and VCS optimization
strategies replaced by "never" (the bot looks neither up). Requests and label-to-taskid
maps are drawn at random from a fixed seed per case, so a failure is reproducible.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

import pytest
from taskgraph.optimize import strategies as _registered  # noqa: F401 - registers them
from taskgraph.optimize.base import optimize_task_graph, registry
from taskgraph.taskgraph import TaskGraph

from bot.graph import Materializer, TaskGraphIndex, plan, task_id_for
from tests.graphs import gecko_index, gecko_push, translations_graph, translations_index
from tests.tcschemas import errors

DECISION = "R5QZ3xhDTpOeXmuMMPbJVg"
CREATE_TASK = "/schemas/queue/v1/create-task-request.json"


def taskgraph_plan(
    graph: dict[str, Any], requested: list[str], existing: dict[str, str]
) -> tuple[set[str], dict[str, str]]:
    """(labels created, label → reused taskId) as taskgraph computes them."""
    _, full = TaskGraph.from_json(copy.deepcopy(graph))
    closure = full.graph.transitive_closure(set(requested))
    target = TaskGraph({label: full.tasks[label] for label in closure.nodes}, closure)
    never = registry["never"]
    optimized, label_to_taskid = optimize_task_graph(
        target,
        set(requested),
        params={},
        do_not_optimize=set(requested),
        decision_task_id=DECISION,
        existing_tasks=dict(existing),
        strategy_override=dict.fromkeys(registry, never),
    )
    created = {task.label for task in optimized.tasks.values()}
    reused = {label: label_to_taskid[label] for label in closure.nodes if label not in created}
    return created, reused


def random_case(index: TaskGraphIndex, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    labels = index.labels
    requested = rng.sample(labels, rng.randint(1, 6))
    share = rng.choice([0.0, 0.3, 0.7, 1.0])
    existing = {label: task_id_for("earlier", label) for label in labels if rng.random() < share}
    return requested, existing


@pytest.fixture(autouse=True)
def _root_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # taskgraph writes artifact-reference URLs from the environment
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "https://tc.example.com")
    monkeypatch.delenv("TASKCLUSTER_PROXY_URL", raising=False)


@pytest.mark.parametrize("seed", range(40))
def test_real_graph_matches_taskgraph(seed: int) -> None:
    index = translations_index()
    requested, existing = random_case(index, random.Random(seed))
    ours = plan(index, requested, existing, request_id=f"r{seed:04x}")
    created, reused = taskgraph_plan(translations_graph(), requested, existing)
    assert set(ours.create) == created
    assert ours.reuse == reused
    assert set(ours.requested) <= set(ours.create)


@pytest.mark.parametrize("seed", range(12))
def test_gecko_shaped_graphs_match_taskgraph(seed: int) -> None:
    push = gecko_push(1500, seed % 3)
    index = gecko_index(1500, seed % 3)
    rng = random.Random(seed)
    requested, existing = random_case(index, rng)
    if seed % 2:  # the push's own label-to-taskid, as a real push would have it
        existing = dict(push.label_to_taskid)
    ours = plan(index, requested, existing, request_id="r1234")
    created, reused = taskgraph_plan(push.graph, requested, existing)
    assert set(ours.create) == created
    assert ours.reuse == reused


def test_reuse_actually_happens_in_the_comparison() -> None:
    # Guard against a differential test that only ever compares empty reuse maps.
    push = gecko_push(1500, 0)
    index = gecko_index(1500, 0)
    tests = [label for label in index.labels if label.startswith("test-")][:5]
    ours = plan(index, tests, push.label_to_taskid, request_id="r1")
    created, reused = taskgraph_plan(push.graph, tests, push.label_to_taskid)
    assert reused
    assert ours.reuse == reused
    assert set(ours.create) == created


@pytest.mark.parametrize("seed", range(6))
def test_materialised_definitions_validate_against_the_queue_schema(seed: int) -> None:
    for index in (translations_index(), gecko_index()):
        requested, existing = random_case(index, random.Random(seed))
        result = plan(index, requested, existing, request_id="r99", times=2)
        materializer = Materializer(
            index,
            decision_task_id=DECISION,
            scheduler_id="gecko-level-3",
            root_url="https://tc.example.com",
        )
        now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
        for task in materializer.definitions(result, now):
            assert errors(CREATE_TASK, task.definition) == [], task.label


def test_deadlines_are_taskgraphs_on_the_real_translations_graph() -> None:
    """Translations tasks ask for 60-day deadlines (Firefox CI allows long training runs):
    every new task's deadline, created and expires are what taskgraph's own
    resolve_timestamps makes of the graph, with no cap of the bot's."""
    from taskgraph.util.parameterization import resolve_timestamps

    graph = translations_graph()
    index = translations_index()
    labels = sorted(graph)[:: max(1, len(graph) // 40)]
    result = plan(index, labels, {}, request_id="r0dead")
    now = dt.datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)
    materializer = Materializer(
        index, decision_task_id="D" * 22, scheduler_id="translations-level-1", root_url="https://tc"
    )
    compared = 0
    for task in materializer.definitions(result, now):
        expected = resolve_timestamps(now, graph[task.label]["task"])
        for key in ("created", "deadline", "expires"):
            assert task.definition[key] == expected[key], (task.label, key)
        compared += 1
    assert compared >= 40
    assert all(
        task.definition["deadline"] == "2027-01-30T12:00:00.123Z"
        for task in materializer.definitions(result, now)
    )
