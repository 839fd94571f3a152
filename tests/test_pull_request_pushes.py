"""A pull request's push on a Taskcluster-GitHub project: its decision task has no index
route, so the bot finds it through the GitHub service's builds, else through the pull
request's Taskcluster check runs, and schedules into that task group."""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import slugid

from bot.core.settings import ProjectSettings
from bot.localtc.seed import SeededPush, seed_push
from tests.tcfixtures import when
from tests.test_github_flow import World, comment, world

__all__ = ["world"]


def pull_request_push(world: World) -> SeededPush:
    """A pull request's push seeded the way Taskcluster's GitHub integration runs it, made
    the head of the pull request the comments are on, its project the repository's."""
    push = seed_push(
        world.env.tc, tasks=600, seed=11, pull_request=(world.repository, world.number)
    )
    world.github.heads[(world.repository, world.number)] = push.revision
    world.github.permissions[(world.repository, "codertocat")] = "write"
    world.env.bot.settings = replace(
        world.env.bot.settings,
        projects={push.project: ProjectSettings(push.project, repositories=(world.repository,))},
    )
    return push


def a_new_job(push: SeededPush) -> str:
    return next(
        x for x in push.push.graph if x.startswith("test-") and x not in push.push.label_to_taskid
    )


async def scheduled_into(world: World, push: SeededPush) -> str:
    label = a_new_job(push)
    await comment(world, f"@taskbot schedule {label}")
    card = next(c["body"] for c in world.github.comments.values() if "task group:" in c["body"])
    assert f"/tasks/groups/{push.decision_task_id}" in card, card
    assert "**finished: 1 ok**" in card, card
    rid = re.search(r"\[(r[0-9a-f]+)\]", card)
    assert rid
    (task,) = [t for t in await world.env.store.plan(rid[1]) if t.label == label]
    assert world.env.tc.queue.tasks[task.task_id].definition["taskGroupId"] == push.decision_task_id
    return card


async def test_the_index_does_not_hold_it_and_the_github_service_names_it(world: World) -> None:
    push = pull_request_push(world)
    assert push.index_paths() == []
    assert [
        b.task_group_id
        for b in world.env.tc.github.list_builds(
            sha=push.revision,
            organization=world.repository.split("/")[0],
            repository=world.repository.split("/")[1],
        )
    ] == [push.decision_task_id]
    await scheduled_into(world, push)


async def test_without_a_build_record_the_pull_request_checks_name_it(world: World) -> None:
    push = pull_request_push(world)
    world.env.tc.github.builds.clear()  # a service that no longer remembers it
    world.github.add_taskcluster_check_run(
        world.repository,
        push.revision,
        root_url=world.env.tc.root_url,
        task_id=push.decision_task_id,
    )
    await scheduled_into(world, push)


async def test_a_check_run_not_made_by_taskcluster_names_nothing(world: World) -> None:
    """Anyone's CI can post a check run linking some task: only Taskcluster's App counts,
    and the group must be a decision task of that very commit."""
    push = pull_request_push(world)
    world.env.tc.github.builds.clear()
    view = world.github.add_taskcluster_check_run(
        world.repository,
        push.revision,
        root_url=world.env.tc.root_url,
        task_id=push.decision_task_id,
    )
    stored = world.github.check_runs[view["id"]]
    stored["app"] = {**stored["app"], "slug": "someone-elses-ci"}
    queue = world.env.tc.queue
    before = len(queue.tasks)
    await comment(world, f"@taskbot schedule {a_new_job(push)}")
    reply = list(world.github.comments.values())[-1]["body"]
    assert "no decision task found" in reply, reply
    assert "Nor did Taskcluster's GitHub service or the pull request's checks" in reply
    assert len(queue.tasks) == before


async def test_a_check_run_linking_a_decision_of_another_repository_is_not_taken(
    world: World,
) -> None:
    """A Taskcluster check run on the head may link any task group: one whose decision
    task names no revision, or this revision of another repository, is not this push."""
    push = pull_request_push(world)
    world.env.tc.github.builds.clear()
    queue = world.env.tc.queue
    decision = queue.tasks[push.decision_task_id].definition
    for name, env in (("silent", {}), ("elsewhere", None)):
        task_id = slugid.nice()
        definition = copy.deepcopy(decision)
        definition.update(taskGroupId=task_id, created=when(), deadline=when(3600))
        if env is not None:
            definition["payload"]["env"] = env  # names no revision at all
        else:
            definition["payload"]["env"] = {
                k: v.replace(world.repository, "someone/else") if isinstance(v, str) else v
                for k, v in definition["payload"]["env"].items()
            }
            definition["metadata"]["source"] = "https://github.com/someone/else/raw/x/.tc.yml"
        definition.pop("taskId", None)
        queue.create(task_id, queue.check_definition(task_id, definition))
        world.github.add_taskcluster_check_run(
            world.repository, push.revision, root_url=world.env.tc.root_url, task_id=task_id
        )
        before = len(queue.tasks)
        await comment(world, f"@taskbot schedule {a_new_job(push)}")
        reply = list(world.github.comments.values())[-1]["body"]
        assert "no decision task found" in reply, (name, reply)
        assert len(queue.tasks) == before


async def test_a_fork_pull_request_is_found_by_its_base_repository(world: World) -> None:
    """A fork's pull request: the decision task's head repository is the fork; its base is
    the project's repository."""
    push = pull_request_push(world)
    definition = world.env.tc.queue.tasks[push.decision_task_id].definition
    env = definition["payload"]["env"]
    fork = "https://github.com/a-contributor/" + world.repository.split("/")[1]
    for name in [k for k in env if k.endswith("_HEAD_REPOSITORY")]:
        env[name] = fork
    definition["metadata"]["source"] = f"{fork}/raw/{push.revision}/.taskcluster.yml"
    await scheduled_into(world, push)
