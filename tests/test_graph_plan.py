"""Planning rules on small graphs, deterministic taskIds, and broken graphs."""

from __future__ import annotations

import json
import re

import pytest

from bot.graph import (
    GraphCache,
    GraphError,
    TaskGraphIndex,
    load_label_to_taskid,
    plan,
    task_id_for,
)
from grammar.vocabulary import TASK_ID
from tests.graphs import index_of, tiny_graph, translations_bytes, translations_index

# test-a → build-a → toolchain-a → docker-a ; test-b → build-a ; lint-a → docker-a
EDGES = {
    "docker-a": {},
    "toolchain-a": {"docker-image": "docker-a"},
    "build-a": {"toolchain": "toolchain-a", "docker-image": "docker-a"},
    "test-a": {"build": "build-a"},
    "test-b": {"build": "build-a"},
    "lint-a": {"docker-image": "docker-a"},
}


@pytest.fixture
def index() -> TaskGraphIndex:
    return index_of(tiny_graph(EDGES))


def test_closure_without_existing_tasks_creates_everything(index: TaskGraphIndex) -> None:
    result = plan(index, ["test-a"], {}, request_id="r1")
    assert list(result.create) == ["docker-a", "toolchain-a", "build-a", "test-a"]
    assert result.reuse == {}
    assert result.requested == ("test-a",)
    assert ("test-a", "build-a", "build") in result.edges


def test_tasks_that_ran_are_reused(index: TaskGraphIndex) -> None:
    ran = {label: f"ran-{label}" for label in EDGES}
    result = plan(index, ["test-a"], ran, request_id="r1")
    assert list(result.create) == ["test-a"]  # requested: always fresh
    # the whole closure below it is reused, as in taskgraph's label_to_taskid
    assert result.reuse == {
        "docker-a": "ran-docker-a",
        "toolchain-a": "ran-toolchain-a",
        "build-a": "ran-build-a",
    }


def test_a_task_is_reused_only_when_all_it_depends_on_is_reused(index: TaskGraphIndex) -> None:
    # build-a ran, but toolchain-a did not: a new toolchain means a new build too.
    ran = {"docker-a": "D", "build-a": "B"}
    result = plan(index, ["test-a"], ran, request_id="r1")
    assert result.reuse == {"docker-a": "D"}
    assert list(result.create) == ["toolchain-a", "build-a", "test-a"]


def test_requested_dependency_is_created_fresh(index: TaskGraphIndex) -> None:
    ran = {label: f"ran-{label}" for label in EDGES}
    result = plan(index, ["test-a", "build-a"], ran, request_id="r1")
    assert set(result.create) == {"build-a", "test-a"}
    assert result.reuse == {"toolchain-a": "ran-toolchain-a", "docker-a": "ran-docker-a"}


def test_times_makes_copies_of_requested_jobs_sharing_dependencies(index: TaskGraphIndex) -> None:
    result = plan(index, ["test-a", "test-b"], {}, request_id="r1", times=3)
    assert result.copies is not None
    assert set(result.copies) == {"test-a", "test-b"}
    assert all(len(ids) == 3 and len(set(ids)) == 3 for ids in result.copies.values())
    assert result.copies["test-a"][0] == result.create["test-a"]
    assert result.new_task_count == 4 + 1 + 2 * 2  # docker, toolchain, build, 2 tests; 4 copies
    labels = [label for label, _, _ in result.new_tasks()]
    assert labels.index("build-a") < labels.index("test-a")


def test_task_ids_are_deterministic_valid_and_distinct() -> None:
    first = task_id_for("r7f3a", "test-a", 0)
    assert first == task_id_for("r7f3a", "test-a", 0)
    assert len({first, task_id_for("r7f3a", "test-a", 1), task_id_for("r7f3b", "test-a", 0)}) == 3
    for n in range(200):
        task_id = task_id_for("r", f"label-{n}", n % 3)
        assert TASK_ID.fullmatch(task_id), task_id
        assert not task_id.startswith("-")  # "nice", like slugid.nice()


def test_replanning_the_same_request_gives_the_same_task_ids(index: TaskGraphIndex) -> None:
    one = plan(index, ["test-a"], {}, request_id="r42", times=2)
    two = plan(index, ["test-a"], {}, request_id="r42", times=2)
    assert one == two


def test_unknown_label_is_an_error(index: TaskGraphIndex) -> None:
    with pytest.raises(GraphError, match="`test-z` is not a job"):
        plan(index, ["test-z"], {}, request_id="r1")


def test_dependency_on_a_missing_label_names_both() -> None:
    index = index_of(tiny_graph({"test-a": {"build": "build-gone"}}))
    with pytest.raises(GraphError) as caught:
        plan(index, ["test-a"], {}, request_id="r1")
    assert str(caught.value) == (
        "`test-a` depends on `build-gone` (as `build`), which is not in the task graph."
    )


def test_a_cycle_is_an_error_naming_its_path() -> None:
    index = index_of(
        tiny_graph(
            {"a-1": {"x": "b-1"}, "b-1": {"x": "c-1"}, "c-1": {"x": "a-1"}, "d-1": {"x": "a-1"}}
        )
    )
    with pytest.raises(GraphError) as caught:
        plan(index, ["d-1"], {}, request_id="r1")
    assert "cycle" in str(caught.value)
    assert "`a-1` → `b-1` → `c-1` → `a-1`" in str(caught.value)


def test_deep_chains_do_not_recurse() -> None:
    edges = {f"t-{n}": ({"x": f"t-{n - 1}"} if n else {}) for n in range(5000)}
    index = index_of(tiny_graph(edges))
    result = plan(index, ["t-4999"], {}, request_id="r1")
    assert len(result.create) == 5000


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "truncated or empty"),
        (b'{"a": {"label": "a", "task": {"x": 1}', "truncated"),
        (b"[1, 2]", "not what taskgraph writes"),
        (b'{"a": {"label": "a", "dependencies": ["b"]}}', "not what taskgraph writes"),
        (b'{"a": {"label": "b"}}', "keyed `a` says its label is `b`"),
        (b'{"a": {"label": "a", "task": {"extra": {"treeherder": {"symbol": 5}}}}}', "task `a`"),
    ],
)
def test_malformed_graphs_are_clear_errors(data: bytes, words: str) -> None:
    with pytest.raises(GraphError, match=re.escape(words)):
        TaskGraphIndex(data, name="full-task-graph.json")


def test_a_truncated_real_graph_is_a_clear_error() -> None:
    data = translations_bytes()
    with pytest.raises(GraphError, match="truncated"):
        TaskGraphIndex(data[: len(data) // 2])


def test_label_to_taskid_merges_later_first() -> None:
    decision = json.dumps({"a": "A1", "b": "B1"}).encode()
    action = json.dumps({"b": "B2", "c": "C2"}).encode()
    assert load_label_to_taskid(decision, action) == {"a": "A1", "b": "B2", "c": "C2"}
    with pytest.raises(GraphError, match="label-to-taskid document 2"):
        load_label_to_taskid(decision, b'{"a": 1}')


def test_legacy_all_tasks_json_is_the_same_format() -> None:
    index = TaskGraphIndex(translations_bytes(), name="all_tasks.json")
    assert index.labels == translations_index().labels


def test_cache_keeps_graphs_within_its_bound() -> None:
    data = json.dumps(tiny_graph(EDGES)).encode()
    graphs = [TaskGraphIndex(data) for _ in range(5)]
    # Same tasks, so one skeleton, counted once: each more graph costs its bodies only.
    assert all(g.skeleton is graphs[0].skeleton for g in graphs)
    one, more = GraphCache.cost(graphs[0]), graphs[0].nbytes_held
    cache = GraphCache(max_mb=(one + 2 * more) / (1024 * 1024))
    for n, graph in enumerate(graphs):
        cache.put(f"decision-{n}", graph)
    assert len(cache) == 3
    assert "decision-0" not in cache
    assert cache.get("decision-4") is graphs[4]
    assert cache.used == one + 2 * more <= cache.max_bytes
    huge = translations_index()
    cache.put("big", huge)
    assert "big" not in cache  # larger than the whole bound: used, not kept


def test_packed_bodies_read_the_same_and_count_a_fraction_of_the_document() -> None:
    data = translations_bytes()
    index = TaskGraphIndex(data)
    before = {label: index.body(label) for label in index.labels}
    jobs = {label: index.runnable_job(label) for label in index.labels}
    assert index.nbytes_held == len(data)
    index.pack()
    assert {label: index.body(label) for label in index.labels} == before
    assert {label: index.runnable_job(label) for label in index.labels} == jobs
    assert index.nbytes_held < len(data) / 4


def test_graphs_that_differ_only_in_their_bodies_share_a_skeleton() -> None:
    data = translations_bytes()
    graph = json.loads(data)
    for node in graph.values():
        node["task"]["metadata"]["owner"] = "someone-else@example.com"  # the next push's
    first, second = TaskGraphIndex(data), TaskGraphIndex(json.dumps(graph).encode())
    assert second.skeleton is first.skeleton
    assert second.labels is first.labels
    assert second.prefixed(first.labels[0]) == first.prefixed(first.labels[0])  # shared search
    label = first.labels[0]
    assert second.body(label)["metadata"]["owner"] == "someone-else@example.com"
    assert first.body(label)["metadata"]["owner"] != "someone-else@example.com"
    graph[label]["attributes"]["kind"] = "something-else"
    third = TaskGraphIndex(json.dumps(graph).encode())
    assert third.skeleton is not first.skeleton  # an attribute differs: a skeleton of its own
    assert third.entry(label).attributes["kind"] == "something-else"
