"""A commit status per request on a pull request, for a deployment with a token (check runs
are for GitHub Apps only)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from gidgethub import sansio

from bot.adapters.github.app import GitHubAdapter, GitHubSettings, GitHubSettingsError
from bot.adapters.github.statuses import DESCRIPTION_LIMIT, status_body
from bot.core.request import Progress
from tests.conftest import load_reference_json
from tests.github_standin import assert_calls_match_openapi
from tests.test_github_checks import an_unscheduled, comment
from tests.test_github_flow import World, world

__all__ = ["world"]


def adapter(world: World) -> GitHubAdapter:
    settings = replace(GitHubSettings("secret", world.github.token), commit_statuses=True)
    return GitHubAdapter(world.env.bot, settings, world.auth)


async def test_a_request_on_a_pull_request_is_pending_then_success_on_its_head(
    world: World,
) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    label = an_unscheduled(world, "test-*")
    await comment(world, github, f"@taskbot schedule {label}", 0)
    record = (await world.env.store.recent_requests(limit=1))[0]
    statuses = world.github.statuses
    assert [s["state"] for s in statuses] == ["pending", "success"]
    for status in statuses:
        assert status["repository"] == world.repository
        assert status["sha"] == world.env.push.revision  # the pull request's head
        assert status["context"] == f"taskbot/{record.id}"
        assert status["target_url"].endswith(f"/tasks/groups/{world.env.push.decision_task_id}")
    assert statuses[-1]["description"] == f"[{record.id}] schedule {label}: finished: 1 ok"
    assert world.github.check_runs == {}
    assert_calls_match_openapi(world.github.requests)


async def test_a_failed_job_makes_the_status_a_failure(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    failing = an_unscheduled(world, "*-crashtest-2")  # the demo worker fails these
    await comment(world, github, f"@taskbot schedule {failing}", 0)
    assert [s["state"] for s in world.github.statuses] == ["pending", "failure"]
    assert "1 failed" in world.github.statuses[-1]["description"]


async def test_no_status_for_a_comment_on_an_issue_or_for_reads(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    github = adapter(world)
    await comment(world, github, "@taskbot jobs xpcshell", 0)
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    )
    label = an_unscheduled(world, "test-*")
    data["comment"]["body"] = f"@taskbot schedule {label} on {world.env.push.project}"
    data["issue"].pop("pull_request", None)  # an issue: no head of its own
    await github.process(sansio.Event(data, event="issue_comment", delivery_id="issue-1"))
    assert await world.env.bot.idle(30)
    assert "task group:" in list(world.github.comments.values())[-1]["body"]
    assert world.github.statuses == []


def test_a_long_description_is_cut_to_githubs_limit() -> None:
    progress = Progress("r1", "a" * 40, "[r1] schedule " + "x" * 200, "3/9 done", "", "u")
    body = status_body(progress)
    assert len(body["description"]) == DESCRIPTION_LIMIT == 140
    assert body["description"].endswith("…")
    assert (body["state"], body["context"]) == ("pending", "taskbot/r1")


def test_commit_statuses_are_on_with_a_token_and_off_with_check_runs() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----"
    base = {"GITHUB_WEBHOOK_SECRET": "s"}
    token = GitHubSettings.from_env({**base, "GITHUB_TOKEN": "t"}, bot_login="taskbot")
    assert token is not None
    assert (token.check_runs, token.commit_statuses) == (False, True)
    quiet = GitHubSettings.from_env(
        {**base, "GITHUB_TOKEN": "t", "GITHUB_COMMIT_STATUSES": "false"}, bot_login="taskbot"
    )
    assert quiet is not None
    assert not quiet.commit_statuses
    app = GitHubSettings.from_env(
        {**base, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": key}, bot_login="taskbot"
    )
    assert app is not None
    assert (app.check_runs, app.commit_statuses) == (True, False)
    app_statuses = GitHubSettings.from_env(
        {
            **base,
            "GITHUB_APP_ID": "1",
            "GITHUB_PRIVATE_KEY": key,
            "GITHUB_CHECK_RUNS": "false",
            "GITHUB_COMMIT_STATUSES": "true",
        },
        bot_login="taskbot",
    )
    assert app_statuses is not None
    assert (app_statuses.check_runs, app_statuses.commit_statuses) == (False, True)
    with pytest.raises(GitHubSettingsError, match="GITHUB_COMMIT_STATUSES must be true or false"):
        GitHubSettings.from_env(
            {**base, "GITHUB_TOKEN": "t", "GITHUB_COMMIT_STATUSES": "sometimes"},
            bot_login="taskbot",
        )
