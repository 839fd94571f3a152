"""Dependencies cached elsewhere: ``index-search`` jobs reused from the Index, as taskgraph's
optimizer reuses them, instead of built again."""

from __future__ import annotations

import datetime as dt

import slugid

from bot.graph import GraphCache, TaskGraphIndex, cached_elsewhere, plan
from bot.tc.decision import DecisionReader
from tests.conftest import REFERENCE
from tests.tcfixtures import Running, local_tc, task_definition, when

__all__ = ["local_tc"]


def translations() -> TaskGraphIndex:
    return TaskGraphIndex(
        (REFERENCE / "taskgraph" / "translations-full-task-graph.json").read_bytes()
    )


def a_job_with_cached_dependencies(graph: TaskGraphIndex) -> tuple[str, dict[str, list[str]]]:
    for label in graph.labels:
        found = cached_elsewhere(graph, [label], {})
        if 3 <= len(found) <= 6 and not graph.entry(next(iter(found))).dependencies:
            return label, found
    raise AssertionError("the translations graph has index-search dependencies")


def test_candidates_are_the_closure_jobs_with_index_search_paths() -> None:
    graph = translations()
    label, found = a_job_with_cached_dependencies(graph)
    assert label not in found  # a requested job is always built afresh
    for dependency, paths in found.items():
        assert paths == graph.entry(dependency).optimization["index-search"]
    # what the push built already is reused as it is, never looked up
    built = next(iter(found))
    assert built not in cached_elsewhere(graph, [label], {built: "x" * 22})


def run(tc: Running, task_id: str, *, outcome: str, expires: str) -> None:
    queue = tc.tc.queue
    queue.create(task_id, queue.check_definition(task_id, task_definition(expires=expires)))
    run_id = queue.claim(task_id, "local", "w")
    queue.resolve(task_id, run_id, outcome)


async def test_an_indexed_copy_is_reused_unless_it_failed_or_expires_too_soon(
    local_tc: Running,
) -> None:
    graph = translations()
    label, found = a_job_with_cached_dependencies(graph)
    good, failed, short = list(found)[:3]  # `good` depends on nothing (the first in order)
    tasks = {name: slugid.nice() for name in ("good", "failed", "short")}
    run(local_tc, tasks["good"], outcome="completed", expires=when(30 * 86400))
    run(local_tc, tasks["failed"], outcome="failed", expires=when(30 * 86400))
    run(local_tc, tasks["short"], outcome="completed", expires=when(3600))
    index = local_tc.tc.index
    for name, dependency in (("good", good), ("failed", failed), ("short", short)):
        index.insert(found[dependency][-1], tasks[name], 0, {}, when(30 * 86400))
    reader = DecisionReader(local_tc.index(), local_tc.queue(), local_tc.session, GraphCache(2))
    usable_until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    copies = await reader.indexed_copies(found, usable_until=usable_until)
    assert copies == {good: tasks["good"]}
    # the planner then reuses it, and every job above it that only needed cached ones
    result = plan(graph, [label], copies, request_id="r1")
    assert result.reuse.get(good) == tasks["good"]
    assert good not in result.create
    assert label in result.create
