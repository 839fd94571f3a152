"""Security on every adapter: a command is authorized by the rules of the project it acts on,
and a place mapped to one project changes nothing in another that does not allow it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from dataclasses import replace
from typing import Any

import pytest

from bot import service
from bot.adapters.api import ApiSettings
from bot.adapters.console import ConsoleReplier
from bot.adapters.irc.accounts import AccountLists
from bot.adapters.irc.adapter import IrcAdapter
from bot.adapters.irc.settings import IrcSettings
from bot.core.request import Request
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded
from grammar import CommandLine, Limits, Parsed, parse_line
from tests.test_api import READER, WRITER, Api, api, bearer, signed_call
from tests.test_console_e2e import env as env_console
from tests.test_github_flow import (
    World,
    comment,
    last_reply,
    open_to_a_fork,
    unscheduled_test,
    world,
)
from tests.test_irc_units import account_check, irc_request

__all__ = ["api", "env_console", "world"]

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


# --- the HTTP API against an attacker on the network -------------------------------------------


async def test_a_signed_call_is_taken_once_for_its_named_sender_only(api: Api) -> None:
    body = json.dumps({"text": "status"}).encode()
    headers = signed_call(body, "mattermost:aryx")
    first = await api.client.post("/api/v1/commands", data=body, headers=headers)
    assert first.status == 200
    replayed = await api.client.post("/api/v1/commands", data=body, headers=headers)
    assert replayed.status == 401
    assert "made before" in (await replayed.json())["error"]
    renamed = {**headers, "X-Taskbot-Actor": "alice"}  # the sender is signed too
    assert (await api.client.post("/api/v1/commands", data=body, headers=renamed)).status == 401
    old = signed_call(body, "mattermost:aryx", at=time.time() - 600)
    stale = await api.client.post("/api/v1/commands", data=body, headers=old)
    assert stale.status == 401
    assert "more than 300 s away" in (await stale.json())["error"]


async def test_an_idempotency_key_is_bound_to_its_caller_and_its_body(api: Api) -> None:
    key = {"Idempotency-Key": "k-42"}
    first = await api.client.post(
        "/api/v1/commands", json={"text": "status"}, headers={**bearer(WRITER), **key}
    )
    assert first.status == 200
    other_body = await api.client.post(
        "/api/v1/commands", json={"text": "jobs xpcshell"}, headers={**bearer(WRITER), **key}
    )
    assert other_body.status == 422
    # A signed caller calling itself alice has keys of its own, not the token's alice's.
    body = json.dumps({"text": "jobs xpcshell"}).encode()
    signed = await api.client.post(
        "/api/v1/commands", data=body, headers={**signed_call(body, "alice"), **key}
    )
    assert signed.status == 200


async def test_a_body_in_several_writes_is_read_whole_and_deep_json_is_400(api: Api) -> None:
    body = json.dumps({"text": "status"}).encode()
    host, port = api.client.host, api.client.port
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /api/v1/commands HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {WRITER}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(head + body[:7])
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write(body[7:])
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"No requests yet." in answer
    deep = b'{"text": ' + b"[" * 30000 + b"]" * 30000 + b"}"
    nested = await api.client.post("/api/v1/commands", data=deep, headers=bearer(WRITER))
    assert nested.status in (400, 413)
    assert nested.status == 400 or len(deep) > 64 * 1024
    tight = b'{"text": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    assert (
        await api.client.post("/api/v1/commands", data=tight, headers=bearer(WRITER))
    ).status == 400


async def test_lines_are_counted_as_they_are_split(api: Api) -> None:
    for separator in ("\n", "\r", "\u2028", "\x85", "\r\n"):
        text = separator.join(["help"] * 30)
        response = await api.client.post(
            "/api/v1/commands", json={"text": text}, headers=bearer(WRITER)
        )
        assert response.status == 400, separator
        assert "at most 20" in (await response.json())["error"]


async def test_a_malformed_authorization_header_is_neither_logged_nor_echoed(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = api.client.host, api.client.port
    for header in (f"Authorization: Bearer {WRITER}\x01", f"Authorization Bearer {WRITER}"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST /api/v1/commands HTTP/1.1\r\nHost: {host}\r\n{header}\r\n"
            "Content-Length: 2\r\n\r\n{}".encode()
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
        assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), answer
        assert WRITER.encode() not in answer
    assert any("not valid HTTP" in r.getMessage() for r in caplog.records)
    assert WRITER not in caplog.text
    ok = await api.client.get("/api/v1/projects")
    assert ok.headers["X-Content-Type-Options"] == "nosniff"


async def test_requests_are_read_with_a_token_and_private_ones_never_listed(api: Api) -> None:
    env = api.env
    IrcAdapter(env.bot, IrcSettings("irc.invalid"))  # knows which IRC places are private
    for place, request_id in (("#sheriffs", "r1111aaaa"), ("aryx", "r2222bbbb")):
        await env.store.add_request(
            request_id, source="irc", actor="aryx", place=place, text="status", command="status"
        )
    anonymous = await api.client.get("/api/v1/requests")
    assert anonymous.status == 401
    assert "TASKBOT_PUBLIC_READS" in (await anonymous.json())["error"]
    assert (await api.client.get("/api/v1/requests/r1111aaaa")).status == 401
    listed = await (await api.client.get("/api/v1/requests", headers=bearer(READER))).json()
    assert [r["id"] for r in listed["requests"]] == ["r1111aaaa"]  # not the private message's
    private = await api.client.get("/api/v1/requests/r2222bbbb", headers=bearer(READER))
    assert private.status == 404
    api_settings = ApiSettings.from_env({"TASKBOT_PUBLIC_READS": "true"})
    assert api_settings.public_reads
    assert not ApiSettings.from_env({}).public_reads


async def test_a_message_too_long_to_look_at_is_answered_unread(env_console: Embedded) -> None:
    out = io.StringIO()
    text = "status\n" + "x" * 300_000
    request = Request("console", "me", "console", text, direct=True)
    assert await env_console.bot.handle(request, ConsoleReplier(out)) == 0
    assert out.getvalue().startswith("taskbot> That message is 300,007 characters long")


# --- found by probing the served bot --------------------------------------------------------------


async def test_cancel_stays_within_the_project_of_its_place(api: Api) -> None:
    env = api.env
    target = env.push.project
    env.bot.settings = replace(env.bot.settings, projects=with_sandbox(env.bot.settings, target))
    env.bot.background.clear()
    done = await api.client.post(
        "/api/v1/commands",
        json={"text": f"schedule {api.unscheduled_test()} on {target}@latest"},
        headers=bearer(WRITER),
    )
    (request_id,) = (await done.json())["requestIds"]
    (task,) = [t.task_id for t in await env.store.plan(request_id)]
    for text in (f"cancel {request_id}", f"cancel {task}", f"cancel all on {env.push.revision}"):
        answer = await api.client.post(
            "/api/v1/commands",
            json={"project": "sandbox", "text": text},
            headers=bearer(WRITER),
        )
        replies = (await answer.json())["replies"]
        assert "Cancelled" not in json.dumps(replies), (text, replies)
    # From the target's own place it cancels.
    mine = await api.client.post(
        "/api/v1/commands", json={"text": f"cancel {request_id}"}, headers=bearer(WRITER)
    )
    assert "Cancelled 1 task" in json.dumps(await mine.json()) or "finished already" in json.dumps(
        await mine.json()
    )


async def test_a_signed_sender_is_not_the_token_of_the_same_name(api: Api) -> None:
    env = api.env
    env.bot.settings = replace(env.bot.settings, confirm_threshold=0)
    held = await api.client.post(
        "/api/v1/commands",
        json={"text": f"schedule {api.unscheduled_test()}"},
        headers=bearer(WRITER),  # the token of alice
    )
    (request_id,) = (await held.json())["requestIds"]
    body = json.dumps({"text": f"confirm {request_id}"}).encode()
    signed = await api.client.post(
        "/api/v1/commands", data=body, headers=signed_call(body, "alice")
    )
    assert (await signed.json())["replies"] == [
        f"Only alice, who asked for {request_id}, can confirm it."
    ]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Authorization": "Bearer \udcff"}, b'{"text": "status"}', 401),
        (
            {
                "X-Taskbot-Signature-256": "sha256=\udcff",
                "X-Taskbot-Actor": "a",
                "X-Taskbot-Timestamp": "1",
            },
            b'{"text": "status"}',
            401,
        ),
        (
            {
                "X-Taskbot-Signature-256": "sha256=00",
                "X-Taskbot-Actor": "a",
                "X-Taskbot-Timestamp": "9" * 5000,
            },
            b'{"text": "status"}',
            401,
        ),
        ({"Content-Encoding": "deflate"}, b"xx", 400),
        ({}, b'{"text": "status", "n": ' + b"9" * 5000 + b"}", 400),
        ({}, b'{"text": "\\u0000"}', 400),
    ],
)
async def test_odd_calls_get_a_4xx_never_a_500(
    api: Api, headers: dict[str, str], body: bytes, status: int
) -> None:
    host, port = api.client.host, api.client.port
    credentials = {"Authorization", "X-Taskbot-Signature-256"}
    sent = (
        headers if credentials & set(headers) else {"Authorization": f"Bearer {WRITER}", **headers}
    )
    lines = "".join(f"{k}: {v}\r\n" for k, v in sent.items())
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /api/v1/commands HTTP/1.1\r\nHost: {host}\r\n{lines}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode(
            "utf-8", "surrogateescape"
        )
        + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]


async def test_a_caller_over_its_rate_is_told_429(api: Api) -> None:
    env = api.env
    env.bot.settings = replace(env.bot.settings, rate_per_minute=3)
    statuses = []
    for _ in range(3):
        answer = await api.client.post(
            "/api/v1/commands", json={"text": "status\nstatus"}, headers=bearer(WRITER)
        )
        statuses.append(answer.status)
    assert statuses == [200, 429, 429]


async def test_an_approved_head_does_not_let_a_fork_run_another_push(world: World) -> None:
    """The head of a fork's pull request was approved; a reader names another push with
    `on`: that push's code was not approved, so it waits like any unapproved code."""
    bot, repository, number = world.env.bot, world.repository, world.number
    project = open_to_a_fork(world)
    head = world.env.push.revision
    await bot.store.approve("github", f"{repository}#{number}", head, "maintainer")
    before = len(world.env.tc.queue.tasks)
    other = "f" * 40
    await comment(
        world,
        f"@taskbot schedule {unscheduled_test(world)} on {project.name}@{other}",
        login="contributor",
    )
    denial = last_reply(world)
    assert denial.startswith("You may not `schedule` here: ")
    assert "is not approved" in denial
    assert len(world.env.tc.queue.tasks) == before
    await comment(world, f"@taskbot schedule {unscheduled_test(world)}", login="contributor")
    assert "1 new task" in last_reply(world) or "finished" in last_reply(world)
