"""Task definitions filled in as taskgraph's create_tasks fills them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bot.graph import GraphError, Materializer, NewTask, plan
from tests.graphs import index_of, tiny_graph
from tests.tcschemas import errors

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=dt.UTC)
DECISION = "R5QZ3xhDTpOeXmuMMPbJVg"

BODIES = {
    "test_a": {
        "payload": {
            "env": {
                "BUILD": {"task-reference": "<build>"},
                "SELF_AND_DECISION": {"task-reference": "<self> made by <decision>"},
                "ESCAPED": {"task-reference": "<<> is a less-than, <build> is not"},
                "INSTALLER": {"artifact-reference": "<build/public/build/target.tar.bz2>"},
                "PRIVATE": {"artifact-reference": "<build/private/secret.txt>"},
                "GRAPH": {"artifact-reference": "<decision/public/task-graph.json>"},
            },
            "image": {"taskId": {"task-reference": "<docker-image>"}, "type": "task-image"},
            "upstream": {"task-reference": {"<build>": "build output"}},
        },
        "deadline": {"relative-datestamp": "10 days"},
        "expires": {"relative-datestamp": "2 days"},
    },
    "build_a": {"routes": ["index.project.build.latest"], "dependencies": []},
}
EDGES = {
    "docker-a": {},
    "build-a": {"docker-image": "docker-a"},
    "test-a": {"build": "build-a", "docker-image": "docker-a"},
}


def materialise(
    existing: dict[str, str] | None = None,
    times: int = 1,
    max_deadline: dt.timedelta | None = dt.timedelta(days=5),
) -> dict[str, NewTask]:
    index = index_of(tiny_graph(EDGES, **BODIES))
    result = plan(index, ["test-a"], existing or {}, request_id="r7f3a", times=times)
    materializer = Materializer(
        index,
        decision_task_id=DECISION,
        scheduler_id="gecko-level-3",
        root_url="https://tc.example.com/",
        max_deadline=max_deadline,
    )
    tasks = materializer.definitions(result, NOW)
    return {f"{t.label}#{t.copy}": t for t in tasks}


def test_task_references() -> None:
    tasks = materialise()
    test, build, docker = tasks["test-a#0"], tasks["build-a#0"], tasks["docker-a#0"]
    env: dict[str, Any] = test.definition["payload"]["env"]
    assert env["BUILD"] == build.task_id
    assert env["SELF_AND_DECISION"] == f"{test.task_id} made by {DECISION}"
    assert env["ESCAPED"] == f"< is a less-than, {build.task_id} is not"
    assert test.definition["payload"]["image"]["taskId"] == docker.task_id
    assert test.definition["payload"]["upstream"] == {build.task_id: "build output"}


def test_artifact_references() -> None:
    tasks = materialise()
    env = tasks["test-a#0"].definition["payload"]["env"]
    build = tasks["build-a#0"].task_id
    assert env["INSTALLER"] == (
        f"https://tc.example.com/api/queue/v1/task/{build}/artifacts/public/build/target.tar.bz2"
    )
    assert (
        env["PRIVATE"]
        == f"http://taskcluster/api/queue/v1/task/{build}/artifacts/private/secret.txt"
    )
    assert env["GRAPH"] == (
        f"https://tc.example.com/api/queue/v1/task/{DECISION}/artifacts/public/task-graph.json"
    )


def test_group_scheduler_parent_and_dependencies() -> None:
    tasks = materialise()
    for task in tasks.values():
        definition = task.definition
        assert definition["taskGroupId"] == DECISION
        assert definition["schedulerId"] == "gecko-level-3"
        assert definition["extra"]["parent"] == DECISION
        assert errors("/schemas/queue/v1/create-task-request.json", definition) == []
    # a root depends on the decision task; the others on their dependencies' taskIds
    assert tasks["docker-a#0"].definition["dependencies"] == [DECISION]
    assert tasks["build-a#0"].definition["dependencies"] == [tasks["docker-a#0"].task_id]
    assert tasks["test-a#0"].definition["dependencies"] == sorted(
        [tasks["build-a#0"].task_id, tasks["docker-a#0"].task_id]
    )


def test_reused_dependencies_and_the_decision_task() -> None:
    tasks = materialise({"docker-a": "DOCKER", "build-a": "BUILD"})
    assert list(tasks) == ["test-a#0"]
    definition = tasks["test-a#0"].definition
    assert definition["payload"]["env"]["BUILD"] == "BUILD"
    # every dependency already exists, so the decision task keeps it from starting early
    assert definition["dependencies"] == ["BUILD", "DOCKER", DECISION]


def test_one_now_for_every_timestamp_and_the_deadline_cap() -> None:
    tasks = materialise()
    created = "2026-11-28T12:00:00.123Z"
    for task in tasks.values():
        assert task.definition["created"] == created
    test = tasks["test-a#0"].definition
    # asked for 10 days: the Queue allows 5; expires may not come before the deadline
    assert test["deadline"] == "2026-12-03T12:00:00.123Z"
    assert test["expires"] == test["deadline"]
    assert tasks["build-a#0"].definition["deadline"] == "2026-11-29T12:00:00.123Z"
    assert tasks["build-a#0"].definition["expires"] == "2026-12-28T12:00:00.123Z"


def test_without_a_stated_maximum_the_graphs_deadline_stands() -> None:
    """A deployment may allow long deadlines (Firefox CI's translations training): the bot
    adds no cap of its own unless the project states the deployment's maximum."""
    test = materialise(max_deadline=None)["test-a#0"].definition
    assert test["deadline"] == "2026-12-08T12:00:00.123Z"  # the 10 days the graph asks
    assert test["expires"] == test["deadline"]  # never before it


def test_copies_have_their_own_ids_and_share_dependencies() -> None:
    tasks = materialise(times=3)
    copies = [tasks[f"test-a#{n}"] for n in range(3)]
    assert len({c.task_id for c in copies}) == 3
    build = tasks["build-a#0"].task_id
    assert {c.definition["payload"]["env"]["BUILD"] for c in copies} == {build}
    assert all(
        c.definition["payload"]["env"]["SELF_AND_DECISION"].startswith(c.task_id) for c in copies
    )


def test_bad_references_name_the_task() -> None:
    graph = tiny_graph(
        {"test-a": {}},
        test_a={"payload": {"x": {"task-reference": "<build>"}}},
    )
    index = index_of(graph)
    result = plan(index, ["test-a"], {}, request_id="r1")
    materializer = Materializer(
        index, decision_task_id=DECISION, scheduler_id="s", root_url="https://x"
    )
    with pytest.raises(GraphError, match="`test-a` refers to `<build>`"):
        materializer.definitions(result, NOW)


def test_bad_datestamp_names_the_task() -> None:
    graph = tiny_graph({"test-a": {}}, test_a={"deadline": {"relative-datestamp": "soon"}})
    index = index_of(graph)
    result = plan(index, ["test-a"], {}, request_id="r1")
    materializer = Materializer(
        index, decision_task_id=DECISION, scheduler_id="s", root_url="https://x"
    )
    with pytest.raises(GraphError, match="`test-a` has a relative-datestamp `soon`"):
        materializer.definitions(result, NOW)
