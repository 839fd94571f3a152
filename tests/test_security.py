"""Security on every adapter: a command is authorized by the rules of the project it acts on,
and a place mapped to one project changes nothing in another that does not allow it."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.adapters.irc.accounts import AccountLists
from bot.core.settings import ProjectSettings
from tests.test_api import READER, WRITER, Api, api, bearer
from tests.test_github_flow import World, comment, last_reply, unscheduled_test, world
from tests.test_irc_units import account_check, irc_request

__all__ = ["api", "world"]

ELSEWHERE = (
    "You may not `schedule` here: this place is for sandbox, and {target} does not take "
    "`schedule` from sandbox's places (its operators can list sandbox in its `allow_from`)."
)


def with_sandbox(settings: object, target: str, **sandbox: object) -> dict[str, ProjectSettings]:
    """The push's project, and `sandbox`, where everyone may schedule."""
    return {
        target: ProjectSettings(target),
        "sandbox": ProjectSettings(
            "sandbox", permissions={"schedule": "read", "retrigger": "read"}, **sandbox
        ),
    }


async def test_an_api_token_cannot_schedule_on_another_project_than_it_says(api: Api) -> None:
    env = api.env
    target = env.push.project
    env.bot.settings = replace(env.bot.settings, projects=with_sandbox(env.bot.settings, target))
    before = len(env.tc.queue.tasks)
    text = f"schedule {api.unscheduled_test()} on {target}@latest"
    for token in (READER, WRITER):
        response = await api.client.post(
            "/api/v1/commands",
            json={"project": "sandbox", "text": text},
            headers=bearer(token),
        )
        assert response.status == 200
        assert (await response.json())["replies"] == [ELSEWHERE.format(target=target)]
    # Sandbox's own rules are for sandbox: a read token may not schedule on the target
    # either when it says nothing of a project.
    response = await api.client.post(
        "/api/v1/commands", json={"text": text}, headers=bearer(READER)
    )
    assert "may read only" in json.dumps(await response.json())
    assert len(env.tc.queue.tasks) == before
    # The target may take commands from sandbox's places: then its own rules decide.
    projects = with_sandbox(env.bot.settings, target)
    projects[target] = replace(projects[target], allow_from=("sandbox",))
    env.bot.settings = replace(env.bot.settings, projects=projects)
    refused = await api.client.post(
        "/api/v1/commands", json={"project": "sandbox", "text": text}, headers=bearer(READER)
    )
    assert "may read only" in json.dumps(await refused.json())
    allowed = await api.client.post(
        "/api/v1/commands", json={"project": "sandbox", "text": text}, headers=bearer(WRITER)
    )
    assert "1 new task" in json.dumps(await allowed.json())


async def test_a_repository_cannot_schedule_on_another_projects_push(world: World) -> None:
    env = world.env
    target = env.push.project
    projects = with_sandbox(env.bot.settings, target, repositories=(world.repository,))
    env.bot.settings = replace(env.bot.settings, projects=projects)
    world.github.permissions[(world.repository, "codertocat")] = "admin"
    before = len(env.tc.queue.tasks)
    await comment(world, f"@taskbot schedule {unscheduled_test(world)} on {target}@latest")
    assert last_reply(world) == ELSEWHERE.format(target=target)
    assert len(env.tc.queue.tasks) == before
    await comment(world, f"@taskbot jobs xpcshell on {target}@latest")  # reading is fine
    assert "xpcshell" in last_reply(world)


async def test_an_irc_channel_cannot_schedule_on_another_project() -> None:
    """#sandbox means sandbox: even a write account changes nothing in autoland from it."""
    lists = AccountLists.of(["aryx"], ["*"])
    async with account_check(lists, {"sandbox": {"schedule": "read"}, "autoland": {}}) as check:
        in_sandbox = replace(irc_request("mallory", "mallory"), project="sandbox")
        assert await check(in_sandbox, "schedule") is None  # sandbox's rules: anyone
        assert await check(in_sandbox, "schedule", "autoland") == (
            "this place is for sandbox, and autoland does not take `schedule` from sandbox's "
            "places (its operators can list sandbox in its `allow_from`)."
        )
        writer = replace(irc_request("aryx", "aryx"), project="sandbox")
        assert await check(writer, "schedule", "autoland") is not None
        assert await check(writer, "jobs", "autoland") is None  # reading is fine
        anywhere = irc_request("aryx", "aryx")  # a channel of no project: autoland's rules
        assert await check(anywhere, "schedule", "autoland") is None
