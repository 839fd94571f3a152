"""A real comment payload through the bot to a local GitHub stand-in and the local Taskcluster."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import gidgethub
import pytest
import pytest_asyncio
from aiohttp import web
from gidgethub import sansio
from gidgethub.aiohttp import GitHubAPI

from bot.adapters.github.app import GitHubAdapter, GitHubSettings
from bot.adapters.github.auth import GitHubAuth
from bot.adapters.github.client import GitHubReplier, with_push
from bot.adapters.github.events import GitHubOrigin, comment_request
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.localtc.seed import seed_push
from bot.store import SqliteStore
from tests.conftest import load_reference_json
from tests.github_standin import GitHubStandIn, assert_calls_match_openapi

COMMENT_IDS = itertools.count(2_000_000_000)


@dataclass
class World:
    env: Embedded
    github: GitHubStandIn
    gh: GitHubAPI
    auth: GitHubAuth
    repository: str
    number: int


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    github = GitHubStandIn()
    runner = web.AppRunner(github.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    payload = load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    repository = payload["repository"]["full_name"]
    async with (
        embedded(store=store, tasks=1500, worker_seconds=0.05) as env,
        aiohttp.ClientSession() as session,
    ):
        auth = GitHubAuth(session, f"http://127.0.0.1:{port}", "taskbot-tests", token=github.token)
        gh = await auth.client(None)
        project = env.push.project
        env.bot.settings = replace(
            env.bot.settings,
            poll_interval=0.05,
            projects={project: ProjectSettings(project, repositories=(repository,))},
        )
        # Permissions are asked of the stand-in, as the adapter asks GitHub.
        GitHubAdapter(env.bot, GitHubSettings("secret", github.token), auth)
        github.heads[(repository, payload["issue"]["number"])] = env.push.revision
        yield World(env, github, gh, auth, repository, payload["issue"]["number"])
    await runner.cleanup()
    await store.close()


async def comment(
    world: World, body: str, *, login: str = "Codertocat", on_pull_request: bool = True
) -> None:
    """A real issue_comment payload, on the pull request (or on a plain issue), through the
    same steps the webhook takes after verifying it."""
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    )
    data["comment"]["body"] = body
    data["comment"]["user"]["login"] = login
    data["comment"]["id"] = next(COMMENT_IDS)  # each comment its own, as on GitHub
    if on_pull_request:
        data["issue"]["pull_request"] = {
            "url": f"https://api.github.com/repos/{world.repository}/pulls/{world.number}"
        }
    await deliver(world, data, "issue_comment")


async def deliver(world: World, data: dict[str, Any], event_name: str) -> None:
    event = sansio.Event(
        data, event=event_name, delivery_id=f"delivery-{len(world.github.requests)}"
    )
    request = comment_request(event, bot_login="taskbot")
    assert request is not None
    request = await with_push(request, world.gh, world.env.bot.settings.projects)
    assert isinstance(request.origin, GitHubOrigin)
    replier = GitHubReplier(
        world.gh,
        world.repository,
        world.number,
        data["comment"]["id"],
        request.origin.comment_kind,
    )
    await world.env.bot.handle(request, replier)
    assert await world.env.bot.idle(30)


def last_reply(world: World) -> str:
    return str(list(world.github.comments.values())[-1]["body"])


def unscheduled_test(world: World, *, skip: int = 0) -> str:
    ran = world.env.push.push.label_to_taskid
    labels = [x for x in world.env.push.push.graph if x.startswith("test-") and x not in ran]
    return labels[skip]


async def test_a_writer_schedules_from_a_pull_request_comment(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    ran = world.env.push.push.label_to_taskid
    label = next(x for x in world.env.push.push.graph if x.startswith("test-") and x not in ran)
    await comment(world, f"Please run it:\n\n@taskbot schedule {label}")
    bodies = [c["body"] for c in world.github.comments.values()]
    card = next(b for b in bodies if "task group:" in b)
    rid = re.search(r"\[(r[0-9a-f]+)\]", card)
    assert rid
    assert f"<!-- taskbot:request:{rid[1]} -->" in card
    assert (
        f"on {world.env.push.project}@{world.env.push.revision[:12]}" in card
    )  # the PR head, pinned
    # one card, edited in place to its final state; no extra progress comments
    (card_comment,) = [c for c in world.github.comments.values() if "task group:" in c["body"]]
    assert card_comment["edits"] >= 1
    assert "**finished: 1 ok**" in card_comment["body"]
    assert f"| [{label}](" in card_comment["body"]
    assert "| completed |" in card_comment["body"]
    assert len(world.github.comments) == 1
    assert [r for _, r in world.github.reactions] == ["eyes", "rocket"]


async def test_notify_mentions_the_requester_in_a_new_comment_when_it_ends(
    world: World,
) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    label = unscheduled_test(world)
    await comment(world, f"@taskbot schedule {label} --notify")
    assert await world.env.bot.idle(30)
    bodies = [str(c["body"]) for c in world.github.comments.values()]
    (card,) = [b for b in bodies if "task group:" in b]
    assert "**finished: 1 ok**" in card  # the card, edited in place (which notifies nobody)
    (told,) = [b for b in bodies if b.startswith("@Codertocat ")]
    assert re.match(
        rf"@Codertocat \[r[0-9a-f]+\] schedule {re.escape(label)} --notify: finished: 1 ok", told
    )
    assert len(world.github.comments) == 2


async def test_a_reader_is_told_why_not(world: World) -> None:
    world.github.permissions[(world.repository, "visitor")] = "read"
    before = len(world.env.tc.queue.tasks)
    await comment(world, "@taskbot retrigger failed", login="visitor")
    (body,) = [c["body"] for c in world.github.comments.values()]
    assert body == (
        f"You may not `retrigger` here: @visitor has read permission on {world.repository}; "
        "`retrigger` needs write."
    )
    assert len(world.env.tc.queue.tasks) == before
    assert [r for _, r in world.github.reactions] == ["eyes", "confused"]
    await comment(world, "@taskbot status", login="visitor")  # reading is allowed
    assert "No requests yet." in list(world.github.comments.values())[-1]["body"]


async def test_webhook_verifies_keeps_acknowledges_then_processes(world: World) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.adapters.github.app import GitHubAdapter, GitHubSettings
    from tests.test_github_events import SECRET, signed

    world.github.permissions[(world.repository, "codertocat")] = "write"
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = web.Application()
    adapter.install(app)
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.1.json")
    )
    data["comment"]["body"] = "@taskbot jobs xpcshell"
    data["issue"]["pull_request"] = {"url": "x"}
    raw = json.dumps(data).encode()
    async with TestClient(TestServer(app)) as client:
        forged = await client.post(
            "/github/webhook", data=raw, headers={**signed(raw, "issue_comment", secret="nope")}
        )
        assert forged.status == 401
        assert "does not match" in (await forged.json())["error"]
        ping_body = json.dumps(
            load_reference_json("github", "webhook-examples", "ping.none.0.json")
        ).encode()
        pong = await client.post(
            "/github/webhook", data=ping_body, headers=signed(ping_body, "ping")
        )
        assert (pong.status, await pong.json()) == (200, {"msg": "pong"})
        accepted = await client.post(
            "/github/webhook", data=raw, headers=signed(raw, "issue_comment")
        )
        assert accepted.status == 202
        again = await client.post("/github/webhook", data=raw, headers=signed(raw, "issue_comment"))
        assert (await again.json()) == {"msg": "already received"}
        for _ in range(100):
            if not await world.env.store.unprocessed("github"):
                break
            await asyncio.sleep(0.05)
    bodies = [c["body"] for c in world.github.comments.values()]
    assert len(bodies) == 1  # the redelivery did nothing
    assert "jobs on" in bodies[0]
    assert "xpcshell" in bodies[0]


async def test_github_app_installation_tokens_are_fetched_and_cached(world: World) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bot.adapters.github.auth import GitHubAuth

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    world.github.app_id, world.github.app_public_key = "424242", key.public_key()
    world.github.permissions[(world.repository, "codertocat")] = "write"
    auth = GitHubAuth(
        world.gh._session, world.auth.api_url, "taskbot-tests", app_id="424242", private_key=pem
    )
    first = await auth.client(7)
    again = await auth.client(7)
    assert first.oauth_token == again.oauth_token == "ghs_installation_7_0"
    assert len(world.github.issued) == 1  # cached until close to expiry
    world.github.token_lifetime = dt.timedelta(minutes=2)
    auth._tokens.clear()
    await auth.client(8)
    await auth.client(8)  # expires within 5 minutes: fetched anew
    assert [i for i, _ in world.github.issued] == [7, 8, 8]
    wrong = GitHubAuth(world.gh._session, world.auth.api_url, "t", app_id="999", private_key=pem)
    with pytest.raises(gidgethub.BadRequest) as refused:
        await wrong.client(9)
    assert refused.value.status_code == 401
    # a delivery from an installation is answered with that installation's token
    adapter_auth = GitHubAuth(
        world.gh._session, world.auth.api_url, "taskbot-tests", app_id="424242", private_key=pem
    )
    from aiohttp.test_utils import TestClient, TestServer

    from bot.adapters.github.app import GitHubAdapter, GitHubSettings
    from tests.test_github_events import SECRET, signed

    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET), adapter_auth)
    app = web.Application()
    adapter.install(app)
    data = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.3.json")
    )
    data["comment"]["body"] = "@taskbot jobs xpcshell"
    data["issue"]["pull_request"] = {"url": "x"}
    data["installation"] = {"id": 31337}
    raw = json.dumps(data).encode()
    async with TestClient(TestServer(app)) as client:
        assert (
            await client.post("/github/webhook", data=raw, headers=signed(raw, "issue_comment"))
        ).status == 202
        for _ in range(100):
            if world.github.comments:
                break
            await asyncio.sleep(0.05)
    assert any(i == 31337 for i, _ in world.github.issued)
    assert world.github.comments


def open_to_a_fork(world: World) -> ProjectSettings:
    """The world's pull request comes from a fork by @stranger, on a project where anyone
    who may read may schedule; the project."""
    bot = world.env.bot
    project = bot.settings.project(world.env.push.project)
    project = replace(project, permissions={"schedule": "read"})
    bot.settings = replace(bot.settings, projects={project.name: project})
    world.github.forks[(world.repository, world.number)] = ("stranger/Hello-World", "stranger")
    return project


async def test_a_fork_is_scheduled_only_at_a_head_a_maintainer_approved(world: World) -> None:
    """Contributors (read) may schedule on this project, but not a fork's code unreviewed."""
    bot, repository, number = world.env.bot, world.repository, world.number
    open_to_a_fork(world)
    world.github.permissions[(repository, "maintainer")] = "write"
    head = world.env.push.revision
    queue = world.env.tc.queue.tasks
    before = len(queue)

    await comment(world, f"@taskbot schedule {unscheduled_test(world)}", login="contributor")
    denial = last_reply(world)
    assert denial.startswith("You may not `schedule` here: ")
    assert f"{repository}#{number} comes from a fork by @stranger, who has read permission" in (
        denial
    )
    assert f"its head {head[:12]} is not approved" in denial
    assert "someone with write permission must review it and comment `@taskbot approve`" in (denial)
    assert len(queue) == before

    await comment(world, "@taskbot ok-to-test", login="contributor")  # not theirs to give
    assert "`approve` needs write" in last_reply(world)
    await comment(world, "@taskbot approve 1234567", login="maintainer")  # not the head
    assert last_reply(world).startswith(f"The head of {repository}#{number} is {head[:12]}")
    await comment(world, f"@taskbot approve {head[:7]}", login="maintainer")
    assert last_reply(world).startswith(f"Approved {head[:12]} of {repository}#{number}")
    await comment(world, "@taskbot approve", login="maintainer")
    assert "was approved by @maintainer already" in last_reply(world)
    (approval,) = [a for a in await bot.store.audit_log() if a["action"] == "approved"]
    assert (approval["actor"], approval["detail"]) == ("maintainer", {"revision": head})

    await comment(world, f"@taskbot schedule {unscheduled_test(world)}", login="contributor")
    assert "**finished: 1 ok**" in last_reply(world)
    assert len(queue) == before + 1

    # A push to the fork moves the head: the approval does not carry over.
    world.github.heads[(repository, number)] = "f" * 40
    await comment(
        world, f"@taskbot schedule {unscheduled_test(world, skip=1)}", login="contributor"
    )
    assert f"its head {'f' * 12} is not approved" in last_reply(world)
    assert len(queue) == before + 1
    assert_calls_match_openapi(world.github.requests)


async def test_no_approval_for_a_maintainers_command_or_a_writers_fork(world: World) -> None:
    bot, repository, number = world.env.bot, world.repository, world.number
    project = bot.settings.project(world.env.push.project)
    bot.settings = replace(
        bot.settings,
        projects={project.name: replace(project, permissions={"schedule": "read"})},
    )
    world.github.permissions[(repository, "writer")] = "write"
    world.github.permissions[(repository, "maintainer")] = "write"
    queue = world.env.tc.queue.tasks
    before = len(queue)
    world.github.forks[(repository, number)] = ("writer/Hello-World", "writer")
    await comment(world, f"@taskbot schedule {unscheduled_test(world)}", login="contributor")
    assert "**finished: 1 ok**" in last_reply(world)
    world.github.forks[(repository, number)] = ("stranger/Hello-World", "stranger")
    await comment(world, f"@taskbot schedule {unscheduled_test(world, skip=1)}", login="maintainer")
    assert "**finished: 1 ok**" in last_reply(world)
    assert len(queue) == before + 2
    assert (
        await bot.store.approver("github", f"{repository}#{number}", world.env.push.revision)
        is None
    )
    del world.github.forks[(repository, number)]
    await comment(world, "@taskbot approve", login="maintainer")
    assert last_reply(world) == (
        f"{repository}#{number} is not from a fork: its jobs can be scheduled without approval."
    )


async def test_a_command_on_a_line_of_the_diff(world: World) -> None:
    """pull_request_review_comment: the reply goes to the conversation, the reactions to the
    review comment through the pulls endpoint of GitHub's API."""
    world.github.permissions[(world.repository, "codertocat")] = "write"
    data = copy.deepcopy(
        load_reference_json(
            "github", "webhook-examples", "pull_request_review_comment.created.0.json"
        )
    )
    assert data["repository"]["full_name"] == world.repository
    data["pull_request"]["number"] = world.number  # the pull request the stand-in knows
    data["comment"]["body"] = "This needs a run:\n\n@taskbot jobs xpcshell"
    await deliver(world, data, "pull_request_review_comment")
    assert "xpcshell" in last_reply(world)
    comment_id = data["comment"]["id"]
    reactions = [
        (method, path)
        for method, path, _ in world.github.requests
        if path.endswith(f"/comments/{comment_id}/reactions")
    ]
    assert (
        reactions
        == [("POST", f"/repos/{world.repository}/pulls/comments/{comment_id}/reactions")] * 2
    )


async def test_on_an_issue_a_command_names_its_push(world: World) -> None:
    world.github.permissions[(world.repository, "codertocat")] = "write"
    project = world.env.push.project
    await comment(world, "@taskbot jobs xpcshell", on_pull_request=False)
    assert last_reply(world) == (
        "Which push? This is not a pull request, so add `on REVISION`, e.g. "
        f"`on {project}@0d1a26e` or `on {project}` for its latest push."
    )
    pulls = [path for _, path, _ in world.github.requests if "/pulls/" in path]
    assert pulls == []  # an issue has no head to pin
    await comment(
        world, f"@taskbot jobs xpcshell on {world.env.push.revision}", on_pull_request=False
    )
    assert "xpcshell" in last_reply(world)
    assert "Which push?" not in last_reply(world)


async def test_a_short_revision_is_found_as_the_head_or_a_commit_of_the_repository(
    world: World,
) -> None:
    from bot.adapters.github.app import GitHubAdapter, GitHubSettings

    world.github.permissions[(world.repository, "codertocat")] = "write"
    env = world.env
    older = env.push
    newer = seed_push(env.tc, tasks=300, seed=78, project=older.project)  # now the latest
    world.github.commits[world.repository] = {older.revision, newer.revision}
    # The adapter lends the bot its way to ask GitHub for a commit.
    adapter = GitHubAdapter(env.bot, GitHubSettings("secret", world.github.token), world.auth)
    adapter.install(web.Application())
    assert env.bot.adapter("github") is adapter
    # On the pull request, its head is the push a short hash names first: no lookup.
    await comment(world, f"@taskbot jobs xpcshell on {older.revision[:7]}")
    assert "xpcshell" in last_reply(world)
    commits = [path for _, path, _ in world.github.requests if "/commits/" in path]
    assert commits == []
    # On an issue, the repository's commits say which push it is.
    await comment(world, f"@taskbot jobs xpcshell on {older.revision[:8]}", on_pull_request=False)
    assert "xpcshell" in last_reply(world)
    commits = [path for _, path, _ in world.github.requests if "/commits/" in path]
    assert commits == [f"/repos/{world.repository}/commits/{older.revision[:8]}"]
    # A hash GitHub does not know (422) gets the same clear answer as anywhere else.
    await comment(world, "@taskbot jobs xpcshell on 0000000", on_pull_request=False)
    assert last_reply(world).startswith(f"`0000000` is no push of {older.project}")
    assert_calls_match_openapi(world.github.requests)
