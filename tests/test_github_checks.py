"""A check run per request on a pull request, and "Re-run"/"Retrigger failed" from it."""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import replace
from typing import Any

import pytest
from gidgethub import sansio

from bot.adapters.github.app import GitHubAdapter, GitHubSettings, GitHubSettingsError
from bot.adapters.github.checks import RETRIGGER_FAILED
from tests.conftest import load_reference_json
from tests.github_standin import assert_calls_match_openapi
from tests.test_github_flow import World, world

__all__ = ["world"]
APP_ID = "4242"


def adapter(world: World) -> GitHubAdapter:
    settings = replace(GitHubSettings("secret", world.github.token), app_id=APP_ID, check_runs=True)
    return GitHubAdapter(world.env.bot, settings, world.auth)


def an_unscheduled(world: World, pattern: str) -> str:
    ran = world.env.push.push.label_to_taskid
    return next(
        label
        for label in world.env.push.push.graph
        if fnmatch.fnmatchcase(label, pattern) and label not in ran
    )


async def comment(world: World, github: GitHubAdapter, body: str, n: int) -> None:
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    )
    data["comment"]["body"] = body
    data["issue"]["pull_request"] = {"url": "x"}
    await github.process(sansio.Event(data, event="issue_comment", delivery_id=f"comment-{n}"))
    assert await world.env.bot.idle(30)


async def click(
    world: World,
    github: GitHubAdapter,
    run: dict[str, Any],
    *,
    login: str,
    n: int,
    app_id: int = int(APP_ID),
    **changes: Any,
) -> None:
    """GitHub's real delivery of a click (on a button, or "Re-run"), about the bot's run."""
    example = (
        "check_run.rerequested.7.json"
        if changes.get("action") == "rerequested"
        else ("check_run.requested_action.6.json")
    )
    data = copy.deepcopy(load_reference_json("github", "webhook-examples", example))
    data["check_run"].update(id=run["id"], external_id=run["external_id"], head_sha=run["head_sha"])
    data["check_run"]["app"]["id"] = app_id
    if "requested_action" in data:
        data["requested_action"] = {"identifier": RETRIGGER_FAILED}
    data["repository"]["full_name"] = world.repository
    data["sender"]["login"] = login
    for key, value in changes.items():
        data[key] = value
    await github.process(sansio.Event(data, event="check_run", delivery_id=f"click-{n}"))
    assert await world.env.bot.idle(30)


def runs(world: World) -> list[dict[str, Any]]:
    return list(world.github.check_runs.values())


async def test_a_request_on_a_pull_request_is_a_check_run_kept_current(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    label = an_unscheduled(world, "test-*")
    await comment(world, github, f"@taskbot schedule {label}", 0)
    (run,) = runs(world)
    record = (await world.env.store.recent_requests(limit=1))[0]
    assert run["head_sha"] == world.env.push.revision  # the pull request's head
    assert run["external_id"] == record.id
    assert run["name"].startswith(f"taskbot: [{record.id}] schedule {label}")
    assert run["details_url"].endswith(f"/tasks/groups/{world.env.push.decision_task_id}")
    assert (run["status"], run["conclusion"]) == ("completed", "success")
    assert run["output"]["title"] == "finished: 1 ok"
    assert f"| [{label}](" in run["output"]["summary"]
    assert run["actions"] == []
    statuses = [update.get("status") for update in run["updates"]]
    assert statuses[-1] == "completed"
    assert set(statuses[:-1]) <= {"in_progress"}
    # "Re-run" on a green check runs the jobs it asked for again.
    queue = world.env.tc.queue.tasks
    await click(world, github, run, login="codertocat", n=1, action="rerequested")
    named = [t for t in queue.values() if t.definition["metadata"]["name"] == label]
    assert len(named) == 2
    assert len(runs(world)) == 2
    assert_calls_match_openapi(world.github.requests)


async def test_retrigger_failed_from_a_failed_check_run(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    failing = an_unscheduled(world, "*-crashtest-2")  # the demo worker fails these
    await comment(world, github, f"@taskbot schedule {failing}", 0)
    (run,) = runs(world)
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    assert [a["identifier"] for a in run["actions"]] == [RETRIGGER_FAILED]
    queue = world.env.tc.queue.tasks
    before = {tid for tid, t in queue.items() if t.definition["metadata"]["name"] == failing}

    # Someone who may not retrigger is told why; nothing is scheduled.
    await click(world, github, run, login="drive-by", n=1)
    assert "write" in list(world.github.comments.values())[-1]["body"]
    assert {tid for tid, t in queue.items() if t.definition["metadata"]["name"] == failing} == (
        before
    )
    # Another App's check run, though it carries the same external id, is not the bot's.
    await click(world, github, run, login="codertocat", n=2, app_id=1, action="rerequested")
    assert len(runs(world)) == 1
    assert (await world.env.store.recent_requests(limit=1))[0].id == run["external_id"]

    await click(world, github, run, login="codertocat", n=3)
    after = {tid for tid, t in queue.items() if t.definition["metadata"]["name"] == failing}
    assert len(after - before) == 1  # the failed job, once more
    assert len(runs(world)) == 2  # the retrigger is a request with a check run of its own
    assert "retrigger" in runs(world)[-1]["name"]
    # The same click delivered again schedules nothing more.
    await click(world, github, run, login="codertocat", n=3)
    assert {tid for tid, t in queue.items() if t.definition["metadata"]["name"] == failing} == (
        after
    )
    assert_calls_match_openapi(world.github.requests)


def test_check_runs_need_a_github_app() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----"
    base = {"GITHUB_WEBHOOK_SECRET": "s"}
    as_app = GitHubSettings.from_env(
        {**base, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": key}, bot_login="taskbot"
    )
    assert as_app is not None
    assert as_app.check_runs
    off = GitHubSettings.from_env(
        {**base, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": key, "GITHUB_CHECK_RUNS": "off"},
        bot_login="taskbot",
    )
    assert off is not None
    assert not off.check_runs
    with_token = GitHubSettings.from_env({**base, "GITHUB_TOKEN": "t"}, bot_login="taskbot")
    assert with_token is not None
    assert not with_token.check_runs
    with pytest.raises(GitHubSettingsError, match="only Apps create check runs"):
        GitHubSettings.from_env(
            {**base, "GITHUB_TOKEN": "t", "GITHUB_CHECK_RUNS": "true"}, bot_login="taskbot"
        )
    with pytest.raises(GitHubSettingsError, match="GITHUB_CHECK_RUNS must be true or false"):
        GitHubSettings.from_env(
            {**base, "GITHUB_TOKEN": "t", "GITHUB_CHECK_RUNS": "maybe"}, bot_login="taskbot"
        )


async def suite_rerun(world: World, github: GitHubAdapter, *, login: str, n: int) -> None:
    """GitHub's real delivery of "Re-run all checks" on the bot's suite of the head."""
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "check_suite.rerequested.7.json")
    )
    data["check_suite"]["app"]["id"] = int(APP_ID)
    data["check_suite"]["head_sha"] = world.env.push.revision
    data["repository"]["full_name"] = world.repository
    data["sender"]["login"] = login
    await github.process(sansio.Event(data, event="check_suite", delivery_id=f"suite-{n}"))
    assert await world.env.bot.idle(30)


async def test_rerun_all_runs_the_failed_jobs_of_every_failed_check_again(world: World) -> None:
    world.github.app_id = APP_ID  # the stand-in stamps the runs with the App
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    first = an_unscheduled(world, "*-crashtest-2")  # the demo worker fails these
    second = next(
        label
        for label in world.env.push.push.graph
        if label.endswith("-crashtest-2")
        and label != first
        and label not in world.env.push.push.label_to_taskid
    )
    green = an_unscheduled(world, "test-*xpcshell*")
    for n, label in enumerate((first, second, green)):
        await comment(world, github, f"@taskbot schedule {label}", n)
    assert sorted(r["conclusion"] for r in runs(world)) == ["failure", "failure", "success"]
    # Another App's failed run carrying the green request's id is none of the bot's.
    (green_run,) = [r for r in runs(world) if r["conclusion"] == "success"]
    world.github.check_runs[1] = {**green_run, "id": 1, "conclusion": "failure", "app": {"id": 1}}
    queue = world.env.tc.queue.tasks

    def copies(label: str) -> int:
        return sum(1 for t in queue.values() if t.definition["metadata"]["name"] == label)

    await suite_rerun(world, github, login="drive-by", n=1)
    assert (copies(first), copies(second), copies(green)) == (1, 1, 1)
    assert "`retrigger` needs write" in list(world.github.comments.values())[-1]["body"]

    await suite_rerun(world, github, login="codertocat", n=2)
    assert (copies(first), copies(second), copies(green)) == (2, 2, 1)
    retriggers = [r for r in runs(world) if "retrigger" in r["name"]]
    assert len(retriggers) == 2  # each a request with a check run of its own
    # The same delivery again schedules nothing more.
    await suite_rerun(world, github, login="codertocat", n=2)
    assert (copies(first), copies(second), copies(green)) == (2, 2, 1)
    assert_calls_match_openapi(world.github.requests)
