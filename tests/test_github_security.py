"""GitHub at scale and under attack: recorded calls match GitHub's OpenAPI, forgeries do
nothing, redeliveries and unchanged edits schedule once, quoted commands never run."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.github.app import GitHubAdapter, GitHubSettings
from tests.conftest import load_reference_json
from tests.github_standin import assert_calls_match_openapi
from tests.test_github_events import SECRET, signed
from tests.test_github_flow import World, world

__all__ = ["world"]


async def deliver(
    client: TestClient, data: dict[str, Any], delivery: str, event: str = "issue_comment"
) -> int:
    raw = json.dumps(data).encode()
    headers = {**signed(raw, event), "X-GitHub-Delivery": delivery}
    response = await client.post("/github/webhook", data=raw, headers=headers)
    return response.status


def comment_payload(
    body: str, *, name: str = "issue_comment.created.2.json", **extra: Any
) -> dict[str, Any]:
    data = copy.deepcopy(load_reference_json("github", "webhook-examples", name))
    data["comment"]["body"] = body
    data["issue"]["pull_request"] = {"url": "x"}
    data.update(extra)
    return data


async def drain(world: World) -> None:
    for _ in range(200):
        if not await world.env.store.unprocessed("github") and await world.env.bot.idle(0.01):
            return
        await asyncio.sleep(0.05)


async def test_forgeries_schedule_nothing_and_never_500(world: World) -> None:
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = web.Application()
    adapter.install(app)
    world.github.permissions[(world.repository, "codertocat")] = "admin"
    rng = random.Random(7)
    data = comment_payload("@taskbot retrigger failed x3")
    raw = json.dumps(data).encode()
    statuses: list[int] = []
    async with TestClient(TestServer(app)) as client:
        for n in range(1000):
            headers = signed(raw, "issue_comment")
            kind = n % 3
            body = raw
            if kind == 0:  # unsigned
                headers = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
            elif kind == 1:  # signed with the wrong secret
                headers = {
                    **headers,
                    "X-Hub-Signature-256": f"sha256={rng.getrandbits(256):064x}",
                }
            else:  # a real signature replayed over an altered body
                body = raw.replace(b"retrigger failed x3", b"retrigger failed x9")
            headers["X-GitHub-Delivery"] = f"forged-{n}"
            response = await client.post("/github/webhook", data=body, headers=headers)
            statuses.append(response.status)
    assert set(statuses) == {401}
    assert await world.env.store.unprocessed("github") == []
    assert await world.env.store.recent_requests() == []
    assert world.github.comments == {}


async def test_redeliveries_and_unchanged_edits_schedule_once(world: World) -> None:
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = web.Application()
    adapter.install(app)
    world.github.permissions[(world.repository, "codertocat")] = "write"
    ran = world.env.push.push.label_to_taskid
    label = next(x for x in world.env.push.push.graph if x.startswith("test-") and x not in ran)
    command = f"@taskbot schedule {label}"
    created = comment_payload(command)
    async with TestClient(TestServer(app)) as client:
        for _ in range(5):
            assert await deliver(client, created, "delivery-same") in (200, 202)
        edited = comment_payload(
            command + "\nthanks!",
            name="issue_comment.edited.7.json",
            changes={"body": {"from": command}},
        )
        assert await deliver(client, edited, "delivery-edit") == 202
        quoted = comment_payload(f"> {command}\n\n```\n{command}\n```\n<!-- {command} -->")
        assert await deliver(client, quoted, "delivery-quoted") == 202
        await drain(world)
    requests = await world.env.store.recent_requests()
    assert len(requests) == 1
    assert len([c for c in world.github.comments.values() if "task group:" in c["body"]]) == 1
    assert_calls_match_openapi(world.github.requests)


async def test_a_non_collaborator_is_denied_naming_the_permission(world: World) -> None:
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = web.Application()
    adapter.install(app)
    world.github.permissions[(world.repository, "codertocat")] = "none"
    before = len(world.env.tc.queue.tasks)
    async with TestClient(TestServer(app)) as client:
        assert await deliver(client, comment_payload("@taskbot schedule xpcshell"), "d-none") == 202
        await drain(world)
    (denial,) = [c["body"] for c in world.github.comments.values()]
    assert "has none permission" in denial
    assert "`schedule` needs write" in denial
    assert len(world.env.tc.queue.tasks) == before
    assert_calls_match_openapi(world.github.requests)


async def test_the_inbox_worker_stops_even_when_a_delivery_wakes_it_that_instant(
    world: World,
) -> None:
    """A wake-up and shutdown's cancel in the same instant: the worker stops. (Python
    3.11's asyncio.wait_for swallowed such a cancel, and shutdown waited forever.)"""
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    worker = asyncio.create_task(adapter.run())
    await asyncio.sleep(0.1)  # it waits for a delivery
    adapter._wake.set()
    worker.cancel()
    done, _ = await asyncio.wait({worker}, timeout=3)
    assert worker in done
    assert worker.cancelled()


async def test_a_team_may_be_granted_a_command_whatever_its_repository_permission(
    world: World,
) -> None:
    """`teams: {org/sheriffs: [retrigger]}`: an active member of the team may retrigger with
    read permission; a pending invitee or an outsider is told which team would do; the team
    grants nothing else."""
    project = world.env.push.project
    settings = world.env.bot.settings
    world.env.bot.settings = replace(
        settings,
        projects={
            project: replace(settings.projects[project], teams={"mozilla/sheriffs": ("retrigger",)})
        },
    )
    world.github.teams[("mozilla", "sheriffs")] = {"Codertocat": "active", "newcomer": "pending"}
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = web.Application()
    adapter.install(app)
    ran = world.env.push.push.label_to_taskid
    label = next(x for x in ran if x.startswith("test-"))
    queue = world.env.tc.queue.tasks
    async with TestClient(TestServer(app)) as client:
        retrigger = comment_payload(f"@taskbot retrigger {label}")
        assert await deliver(client, retrigger, "d-team-1") == 202
        await drain(world)
        named = [t for t in queue.values() if t.definition["metadata"]["name"] == label]
        assert len(named) == 2  # the member (read permission only) retriggered it
        schedule = comment_payload("@taskbot schedule xpcshell")
        schedule["comment"]["id"] += 1
        assert await deliver(client, schedule, "d-team-2") == 202
        await drain(world)
        invitee = comment_payload(f"@taskbot retrigger {label}")
        invitee["comment"]["id"] += 2
        invitee["comment"]["user"]["login"] = "newcomer"
        assert await deliver(client, invitee, "d-team-3") == 202
        await drain(world)
    denials = [c["body"] for c in world.github.comments.values() if "permission on" in c["body"]]
    assert denials == [
        f"You may not `schedule` here: @Codertocat has read permission on {world.repository}; "
        "`schedule` needs write.",
        f"You may not `retrigger` here: @newcomer has read permission on {world.repository}; "
        "`retrigger` needs write or membership in mozilla/sheriffs.",
    ]
    assert len([t for t in queue.values() if t.definition["metadata"]["name"] == label]) == 2
    assert_calls_match_openapi(world.github.requests)
