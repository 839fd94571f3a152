"""Sheriffs in a room of a real Matrix homeserver (Synapse on loopback) schedule and follow
jobs through the bot on the local Taskcluster; raw Client-Server API clients play them."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio

from bot.adapters.api import CollectingReplier
from bot.adapters.matrix.adapter import ENCRYPTED, MatrixAdapter, MatrixReplier
from bot.adapters.matrix.settings import MatrixSettings
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.store import SqliteStore
from tests.conftest import keep_secret
from tests.matrixserver import MatrixError, MatrixTestClient, MatrixUser, SynapseServer, synapse

__all__ = ["synapse"]
Event = dict[str, Any]


@dataclass
class Room:
    """A room with the bot in it: its owner (the creator), a moderator (power 50), a plain
    member, and the bot's adapter on the embedded local Taskcluster."""

    server: SynapseServer
    env: Embedded
    adapter: MatrixAdapter
    room_id: str
    bot_user: MatrixUser
    owner: MatrixTestClient
    sheriff: MatrixTestClient
    member: MatrixTestClient

    async def restart_bot(self, **changes: Any) -> MatrixAdapter:
        """The bot process goes away (its following stops too) and a new one starts on the
        same store; returns once it has synced."""
        await self.adapter.stop()
        bot = self.env.bot
        for task in list(bot.background):
            task.cancel()
        assert await bot.idle(5)
        adapter = MatrixAdapter(bot, replace(self.adapter.settings, **changes))
        self.adapter = adapter
        await adapter.start()
        await asyncio.wait_for(adapter.synced.wait(), 20)
        return adapter


def from_bot(room: Room) -> Callable[[Event], bool]:
    return lambda e: e.get("sender") == room.bot_user.user_id


def reply_to(room: Room, event_id: str, contains: str = "") -> Callable[[Event], bool]:
    """The bot's reply to ``event_id`` (in a thread or not) whose body holds ``contains``."""

    def found(event: Event) -> bool:
        content = event.get("content") or {}
        relates = content.get("m.relates_to") or {}
        answered = (relates.get("m.in_reply_to") or {}).get("event_id")
        return (
            from_bot(room)(event)
            and event["type"] == "m.room.message"
            and answered == event_id
            and contains in str(content.get("body", ""))
        )

    return found


def edit_of(room: Room, event_id: str, contains: str) -> Callable[[Event], bool]:
    def found(event: Event) -> bool:
        content = event.get("content") or {}
        relates = content.get("m.relates_to") or {}
        return (
            from_bot(room)(event)
            and relates.get("rel_type") == "m.replace"
            and relates.get("event_id") == event_id
            and contains in str((content.get("m.new_content") or {}).get("body", ""))
        )

    return found


def reactions(events: list[Event], event_id: str) -> list[str]:
    return [
        e["content"]["m.relates_to"]["key"]
        for e in events
        if e["type"] == "m.reaction" and e["content"]["m.relates_to"]["event_id"] == event_id
    ]


def unscheduled_test(env: Embedded, skip: int = 0) -> str:
    ran = env.push.push.label_to_taskid
    return [x for x in env.push.push.graph if x.startswith("test-") and x not in ran][skip]


@pytest.fixture
def bot_unlimited() -> bool:
    """Whether the bot's account is exempt from the homeserver's rate limit."""
    return True


@pytest_asyncio.fixture
async def room(synapse: SynapseServer, tmp_path: Path, bot_unlimited: bool) -> AsyncIterator[Room]:
    bot_user, owner_user, sheriff_user, member_user = await asyncio.gather(
        synapse.register("taskbot", "bot-password-1"),
        synapse.register("owner", "owner-password-1"),
        synapse.register("sheriff", "sheriff-password-1"),
        synapse.register("member", "member-password-1"),
    )
    keep_secret(bot_user.access_token)
    for user in (owner_user, sheriff_user, member_user):
        await synapse.unlimit(user)
    if bot_unlimited:
        await synapse.unlimit(bot_user)
    owner = synapse.client(owner_user)
    sheriff = synapse.client(sheriff_user)
    member = synapse.client(member_user)
    room_id = await owner.create_room("sheriffs", preset="public_chat")
    await sheriff.join(room_id)
    await member.join(room_id)
    await owner.set_power_level(room_id, sheriff_user.user_id, 50)
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        async with embedded(store=store, tasks=1500, worker_seconds=0.3) as env:
            env.bot.settings = replace(env.bot.settings, poll_interval=0.1, edit_interval=0.2)
            settings = MatrixSettings(
                homeserver=synapse.base_url,
                user_id=bot_user.user_id,
                access_token=bot_user.access_token,
                rooms=(room_id,),
                sync_timeout=2.0,
                reconnect_base=0.2,
            )
            adapter = MatrixAdapter(env.bot, settings)
            await adapter.start()
            here = Room(synapse, env, adapter, room_id, bot_user, owner, sheriff, member)
            try:
                await asyncio.wait_for(adapter.synced.wait(), 20)
                yield here
            finally:
                await here.adapter.stop()
    finally:
        for client in (owner, sheriff, member):
            await client.close()
        await store.close()


async def test_a_moderator_schedules_and_follows_jobs_to_the_end(room: Room) -> None:
    env = room.env
    project = env.push.project
    # The room names the project: the bot-wide default is some other one.
    env.bot.settings = replace(
        env.bot.settings,
        default_project="elsewhere",
        projects={project: ProjectSettings(project, matrix_rooms=(room.room_id,))},
    )
    room.adapter.rooms[room.room_id] = project
    label = unscheduled_test(env)
    command = await room.sheriff.send_text(room.room_id, f"taskbot: schedule {label}")
    card = await room.sheriff.wait_for(room.room_id, reply_to(room, command, "1 new task"))
    found = re.match(r"\[(r[0-9a-f]+)\]", card["content"]["body"])
    assert found, card
    request_id = found[1]
    assert card["content"]["msgtype"] == "m.notice"
    assert card["content"]["m.mentions"] == {"user_ids": [room.sheriff.user_id]}
    finished = await room.sheriff.wait_for(
        room.room_id, edit_of(room, card["event_id"], "finished: 1 ok"), timeout=40
    )
    new = finished["content"]["m.new_content"]
    root = env.bot.clients.queue.options["rootUrl"]
    assert f'<a href="{root}/tasks/' in new["formatted_body"]  # a link to each task
    assert f"{root}/tasks/groups/" in new["body"]  # the plain fallback has them too
    assert finished["content"]["body"].startswith("* ")
    events = await room.sheriff.messages(room.room_id)
    # one card, edited in place: no other message of the bot's answers the command
    assert [e["event_id"] for e in events if reply_to(room, command)(e)] == [card["event_id"]]
    assert set(reactions(events, command)) == {"👀", "🚀"}
    (record,) = await env.store.recent_requests()
    assert (record.id, record.source, record.actor, record.place, record.project) == (
        request_id,
        "matrix",
        room.sheriff.user_id,
        room.room_id,
        project,
    )
    assert len([t for t in env.tc.queue.tasks.values() if label in str(t)]) >= 1


async def test_a_plain_member_is_refused_with_the_reason(room: Room) -> None:
    before = len(room.env.tc.queue.tasks)
    command = await room.member.send_text(room.room_id, "!retrigger failed")
    refused = await room.member.wait_for(room.room_id, reply_to(room, command, "You may not"))
    assert refused["content"]["body"] == (
        f"You may not `retrigger` here: {room.member.user_id} may read here; `retrigger` needs "
        "write access: a user listed in MATRIX_WRITE_USERS or a power level of at least 50 "
        "in this room (yours is 0)"
    )
    asked = await room.member.send_text(room.room_id, "taskbot: status")
    await room.member.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))
    events = await room.member.messages(room.room_id)
    assert "😕" in reactions(events, command)
    assert len(room.env.tc.queue.tasks) == before


async def test_the_rooms_creator_may_write_though_no_power_level_names_them(room: Room) -> None:
    # In rooms of version 12 the creator is in no power-level list but outranks everyone.
    label = unscheduled_test(room.env)
    command = await room.owner.send_text(room.room_id, f"taskbot: schedule {label} --dry-run")
    await room.owner.wait_for(room.room_id, reply_to(room, command, "1 new task"))


async def test_commands_in_code_and_in_quotes_never_run(room: Room) -> None:
    label = unscheduled_test(room.env)
    before = len(room.env.tc.queue.tasks)
    earlier = await room.sheriff.send_text(room.room_id, "what should I run?")
    fenced = await room.sheriff.send_text(
        room.room_id,
        f"try this:\n```\ntaskbot: schedule {label}\n```",
        formatted_body=f"<p>try this:</p><pre><code>taskbot: schedule {label}\n</code></pre>",
    )
    quoted = await room.sheriff.send_text(
        room.room_id,
        f"> <{room.sheriff.user_id}> taskbot: schedule {label}\n\nnot yet",
        formatted_body=(
            f"<mx-reply><blockquote>taskbot: schedule {label}</blockquote></mx-reply>not yet"
        ),
        reply_to=earlier,
    )
    indented = await room.sheriff.send_text(
        room.room_id,
        f"as in:\n\n    taskbot: schedule {label}\n",
        formatted_body=f"<p>as in:</p><pre><code>taskbot: schedule {label}\n</code></pre>",
    )
    marker = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, marker))
    events = await room.sheriff.messages(room.room_id)
    for ignored in (fenced, quoted, indented):
        assert not [e for e in events if reply_to(room, ignored)(e)]
        assert reactions(events, ignored) == []
    assert len(room.env.tc.queue.tasks) == before


async def test_a_reply_in_a_thread_stays_in_it(room: Room) -> None:
    root = await room.sheriff.send_text(room.room_id, "mochitest-1 is orange again")
    command = await room.sheriff.send_text(room.room_id, "taskbot: help", thread_root=root)
    answer = await room.sheriff.wait_for(room.room_id, reply_to(room, command, "Commands"))
    relates = answer["content"]["m.relates_to"]
    assert (relates["rel_type"], relates["event_id"]) == ("m.thread", root)


async def test_an_edited_command_runs_only_what_is_new(room: Room) -> None:
    label = unscheduled_test(room.env)
    command = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, command, "No requests yet"))
    await room.sheriff.send_raw(
        room.room_id,
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": f"* taskbot: status\ntaskbot: schedule {label} --dry-run",
            "m.new_content": {
                "msgtype": "m.text",
                "body": f"taskbot: status\ntaskbot: schedule {label} --dry-run",
            },
            "m.relates_to": {"rel_type": "m.replace", "event_id": command},
        },
    )
    await room.sheriff.wait_for(room.room_id, reply_to(room, command, "1 new task"))
    events = await room.sheriff.messages(room.room_id)
    statuses = [e for e in events if reply_to(room, command, "No requests yet")(e)]
    assert len(statuses) == 1  # the status the message held before is not answered again


async def test_a_restart_replays_nothing_misses_nothing_and_reports_in_the_room(
    room: Room,
) -> None:
    label = unscheduled_test(room.env)
    command = await room.sheriff.send_text(room.room_id, f"taskbot: schedule {label}")
    card = await room.sheriff.wait_for(room.room_id, reply_to(room, command, "1 new task"))
    request_id = re.match(r"\[(r[0-9a-f]+)\]", card["content"]["body"])
    assert request_id
    tasks = len(room.env.tc.queue.tasks)
    # The bot goes away before the task ends; meanwhile someone asks something.
    await room.adapter.stop()
    while_away = await room.member.send_text(room.room_id, "taskbot: status")
    adapter = await room.restart_bot()
    elsewhere = CollectingReplier()
    assert await room.env.bot.resume(elsewhere) == [request_id[1]]
    await room.sheriff.wait_for(
        room.room_id, edit_of(room, card["event_id"], "finished: 1 ok"), timeout=40
    )
    assert elsewhere.replies == []  # in the room, not in the log
    await room.member.wait_for(room.room_id, reply_to(room, while_away, request_id[1]))
    # A third start: nothing is answered twice, nothing scheduled twice.
    marker = await room.sheriff.send_text(room.room_id, "taskbot: help")
    await room.sheriff.wait_for(room.room_id, reply_to(room, marker, "Commands"))
    await room.restart_bot()
    last = await room.sheriff.send_text(room.room_id, "taskbot: help")
    await room.sheriff.wait_for(room.room_id, reply_to(room, last, "Commands"))
    events = await room.sheriff.messages(room.room_id)
    for asked in (command, while_away, marker):
        assert len([e for e in events if reply_to(room, asked)(e)]) == 1, asked
    assert len(room.env.tc.queue.tasks) == tasks
    assert adapter is not room.adapter


async def test_a_command_found_long_after_it_was_sent_is_not_run(room: Room) -> None:
    await room.adapter.stop()
    command = await room.sheriff.send_text(room.room_id, "taskbot: retrigger failed")
    await asyncio.sleep(0.2)
    await room.restart_bot(max_age=0.1)
    stale = await room.sheriff.wait_for(room.room_id, reply_to(room, command, "I was away"))
    assert "send it again if it is still wanted" in stale["content"]["body"]


@pytest.mark.parametrize("bot_unlimited", [False])
async def test_rate_limited_replies_are_sent_again_when_the_homeserver_allows(
    room: Room,
) -> None:
    replier = MatrixReplier(room.adapter, room.room_id, room.sheriff.user_id)
    sent = [await replier.post(f"line {n}") for n in range(8)]
    assert len(set(sent)) == 8
    assert room.adapter.limits_waited >= 1  # Synapse refused some (M_LIMIT_EXCEEDED) at first
    events = await room.sheriff.messages(room.room_id)
    bodies = [e["content"]["body"] for e in events if from_bot(room)(e) and "line " in str(e)]
    assert bodies == [f"{room.sheriff.user_id}: line {n}" for n in range(8)]  # once each, in order


async def test_an_encrypted_room_is_refused_politely(room: Room) -> None:
    secret = await room.sheriff.create_room("private", preset="private_chat", encrypted=True)
    await room.sheriff.invite(secret, room.bot_user.user_id)
    await room.restart_bot(rooms=(room.room_id, secret))
    notice = await room.sheriff.wait_for(
        secret, lambda e: from_bot(room)(e) and e["content"].get("body") == ENCRYPTED
    )
    assert notice["content"]["msgtype"] == "m.notice"
    # A client that sends in clear all the same is not answered either.
    before = len(room.env.tc.queue.tasks)
    command = await room.sheriff.send_text(secret, "taskbot: status")
    marker = await room.sheriff.send_text(room.room_id, "taskbot: help")
    await room.sheriff.wait_for(room.room_id, reply_to(room, marker, "Commands"))
    events = await room.sheriff.messages(secret)
    assert not [e for e in events if reply_to(room, command)(e)]
    assert len([e for e in events if e["content"].get("body") == ENCRYPTED]) == 1
    assert len(room.env.tc.queue.tasks) == before


async def test_invitations_from_writers_are_taken_and_others_declined(room: Room) -> None:
    room.adapter.settings = replace(
        room.adapter.settings, write_users=frozenset({room.sheriff.user_id})
    )
    stranger_room = await room.member.create_room("mine")
    await room.member.invite(stranger_room, room.bot_user.user_id)
    direct = await room.sheriff.create_room(invite=(room.bot_user.user_id,))
    async with asyncio.timeout(20):
        while direct not in room.adapter.rooms:
            await asyncio.sleep(0.1)
    # In a direct chat every line is a command.
    await asyncio.sleep(1.0)  # the bot's join reaches its next sync
    asked = await room.sheriff.send_text(direct, "status")
    await room.sheriff.wait_for(direct, reply_to(room, asked, "No requests yet"))
    assert stranger_room not in room.adapter.rooms
    state = await room.member.state(stranger_room, "m.room.member", room.bot_user.user_id)
    assert state["membership"] == "leave"  # the invitation was declined


async def test_with_a_password_the_bot_logs_in_as_one_device_it_keeps(room: Room) -> None:
    adapter = await room.restart_bot(access_token=None, password="bot-password-1")
    first = adapter.client.device_id
    assert first
    stored = await room.env.store.adapter_value("matrix", f"device:{room.bot_user.user_id}")
    assert stored == first
    adapter = await room.restart_bot()  # the same settings: a password again
    assert adapter.client.device_id == first
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))


async def test_a_long_reply_is_paged_with_more(room: Room) -> None:
    await room.restart_bot(page_lines=4)
    asked = await room.sheriff.send_text(room.room_id, "taskbot: help")
    first = await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "Commands"))
    lines = first["content"]["body"].split("\n")
    assert len(lines) == 4
    assert re.fullmatch(r"… \d+ more lines: say `taskbot: more`\.", lines[-1]), lines
    more = await room.sheriff.send_text(room.room_id, "taskbot: more")
    page = await room.sheriff.wait_for(room.room_id, reply_to(room, more))
    assert page["content"]["body"].split("\n")[0] not in first["content"]["body"]


async def test_a_command_buried_under_a_busy_hour_is_still_answered(room: Room) -> None:
    """More messages came while the bot was away than the first sync sends (100): the
    gap is fetched, and the command in it answered."""
    await room.adapter.stop()
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    for n in range(130):
        await room.member.send_text(room.room_id, f"chatter {n}")
    await room.restart_bot()
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))


async def test_after_a_homeserver_restart_the_bot_syncs_again_and_answers(room: Room) -> None:
    syncs = room.adapter.syncs
    await room.server.restart()
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"), timeout=40)
    assert room.adapter.syncs > syncs


async def test_a_reply_the_homeserver_refuses_is_tried_again_later(room: Room) -> None:
    """The room stops letting the bot speak; its answer fails and the message is tried
    again later, once the room lets it speak again: answered once."""
    room.adapter.retry_delays = (0.5, 0.5, 0.5, 60.0)
    levels = await room.owner.state(room.room_id, "m.room.power_levels")
    muted = {**levels, "events": {**levels.get("events", {}), "m.room.message": 10}}
    await room.owner.set_state(room.room_id, "m.room.power_levels", muted)
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    async with asyncio.timeout(20):
        while not (await room.env.store.unprocessed("matrix")) or not any(
            row["attempts"] for row in await room.env.store.unprocessed("matrix")
        ):
            await asyncio.sleep(0.2)
    await room.owner.set_state(room.room_id, "m.room.power_levels", levels)
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))
    events = await room.sheriff.messages(room.room_id)
    assert len([e for e in events if reply_to(room, asked)(e)]) == 1
    assert reactions(events, asked).count("👀") == 1  # sent again with the same transaction


async def test_a_mention_of_the_bot_is_a_command(room: Room) -> None:
    label = unscheduled_test(room.env)
    bot_id = room.bot_user.user_id
    asked = await room.sheriff.send_text(
        room.room_id,
        f"taskbot schedule {label} --dry-run",
        formatted_body=(
            f'<a href="https://matrix.to/#/{bot_id}">taskbot</a> schedule {label} --dry-run'
        ),
        mentions=[bot_id],
    )
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "1 new task"))


async def test_a_projects_room_named_by_alias_means_that_project(room: Room) -> None:
    env = room.env
    project = env.push.project
    ci = await room.owner.create_room("ci", preset="public_chat")
    alias = "#ci:taskbot.test"
    await room.owner.request("PUT", f"/directory/room/{quote(alias)}", {"room_id": ci})
    await room.sheriff.join(ci)
    await room.owner.set_power_level(ci, room.sheriff.user_id, 50)
    env.bot.settings = replace(
        env.bot.settings,
        default_project="elsewhere",
        projects={project: ProjectSettings(project, matrix_rooms=(alias,))},
    )
    adapter = await room.restart_bot()
    assert adapter.aliases == {alias: ci}
    label = unscheduled_test(env)
    # Several commands in one message, each answered.
    asked = await room.sheriff.send_text(ci, f"taskbot: schedule {label} --dry-run\ntaskbot: help")
    await room.sheriff.wait_for(ci, reply_to(room, asked, "1 new task"))
    await room.sheriff.wait_for(ci, reply_to(room, asked, "Commands"))
    # The configured room without a project uses the bot-wide default.
    elsewhere = await room.sheriff.send_text(room.room_id, f"taskbot: schedule {label}")
    await room.sheriff.wait_for(room.room_id, reply_to(room, elsewhere, "elsewhere"))


async def test_the_served_bot_is_on_matrix_when_a_homeserver_is_set(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """`python -m bot` as deployed (no terminal: it serves), with MATRIX_* set: it joins the
    room and answers there; a bad Matrix setting stops it at start-up, naming it."""
    import os
    import signal
    import sys

    from tests.conftest import ROOT
    from tests.daemons import free_port

    bot_user, sheriff_user = await asyncio.gather(
        synapse.register("taskbot", "bot-password-1"),
        synapse.register("sheriff", "sheriff-password-1"),
    )
    keep_secret(bot_user.access_token)
    sheriff = synapse.client(sheriff_user)
    room_id = await sheriff.create_room("sheriffs", preset="public_chat")
    env = {
        **os.environ,
        "PORT": str(free_port("127.0.0.1")),
        "TASKBOT_DATA_DIR": str(tmp_path),
        "MATRIX_HOMESERVER": synapse.base_url,
        "MATRIX_USER_ID": bot_user.user_id,
        "MATRIX_ACCESS_TOKEN": bot_user.access_token,
        "MATRIX_ROOMS": room_id,
    }
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "parse", "status",
        cwd=ROOT,
        env={**env, "MATRIX_USER_ID": "taskbot"},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, said = await bad.communicate()
    assert bad.returncode == 78
    assert b"MATRIX_USER_ID" in said
    history = await sheriff.send_text(room_id, "taskbot: status")  # before the bot was there
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--tasks", "600",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(MatrixError):  # no member event yet: not in yet
                    joined = await sheriff.state(room_id, "m.room.member", bot_user.user_id)
                    if joined.get("membership") == "join":
                        break
                await asyncio.sleep(0.2)
        # Asked at once: what is said after the bot started counts, even before its first sync.
        asked = await sheriff.send_text(room_id, "taskbot: help")
        answer = await sheriff.wait_for(
            room_id,
            lambda e: e.get("sender") == bot_user.user_id and "Commands" in str(e["content"]),
        )
        assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == asked
        events = await sheriff.messages(room_id)
        assert not [e for e in events if history in str(e["content"])]  # history is not run
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(process.communicate(), 30)
        await sheriff.close()
    assert process.returncode == 0, log.decode()[-2000:]
    assert bot_user.access_token.encode() not in log
