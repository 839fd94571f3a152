"""Security on every adapter: a command is authorized by the rules of the project it acts on,
and a place mapped to one project changes nothing in another that does not allow it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from bot import service
from bot.adapters.irc.accounts import AccountLists
from bot.core.settings import ProjectSettings
from grammar import CommandLine, Limits, Parsed, parse_line
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


# --- bounded work for untrusted input ----------------------------------------------------------


async def test_a_huge_query_is_refused_at_once_and_health_stays_fast(api: Api) -> None:
    """1,300 `'t` terms used to take 10 s of the event loop on a 3,000-task push."""
    loop = asyncio.get_running_loop()
    query = " ".join(["'t"] * 1300)
    push = api.env.push
    url = f"/api/v1/projects/{push.project}/pushes/{push.revision}/runnable-jobs"
    started = loop.time()
    answer = await api.client.get(url, params={"q": query})
    took = loop.time() - started
    assert answer.status == 400
    assert "at most 24 terms" in (await answer.json())["error"]
    assert took < 1.0
    # The largest query allowed, while /healthz is asked meanwhile.
    allowed = " ".join(["'t"] * 24)
    call = asyncio.create_task(api.client.get(url, params={"q": allowed}))
    worst = 0.0
    while not call.done():
        started = loop.time()
        assert (await api.client.get("/healthz")).status == 200
        worst = max(worst, loop.time() - started)
        await asyncio.sleep(0.01)
    assert (await call).status == 200
    assert worst < 0.5, worst


async def test_a_long_command_nobody_may_run_is_not_even_read(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    real = service.parse_line

    def counting(where: CommandLine, **kwargs: Any) -> Parsed:
        read.append(len(where.body))
        return real(where, **kwargs)

    monkeypatch.setattr(service, "parse_line", counting)
    long = "try: " + "-z " * 20000  # 1.5 s of parsing
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await api.client.post("/api/v1/commands", json={"text": long}, headers=bearer(READER))
    assert loop.time() - started < 0.5
    assert (await answer.json())["replies"][0].startswith("You may not `try` here")
    assert read == []
    too_long = parse_line(CommandLine(1, "schedule " + "x" * 100_001, 0), limits=Limits())
    assert too_long.error is not None
    assert too_long.error.message == (
        "a command is at most 100,000 characters; this one has 100,010."
    )
