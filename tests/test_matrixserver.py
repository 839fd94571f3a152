"""The Matrix test homeserver (Synapse) with real clients over its Client-Server API.

These check what the bot's Matrix tests rely on: users made through the shared-secret API,
rooms, invites and joins, messages with mentions, replies and threads seen by another user,
power levels in the room state, a real 429 M_LIMIT_EXCEEDED for a user sending too fast,
and no limit at all for a user :meth:`SynapseServer.unlimit` exempted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.matrixserver import (
    MESSAGE_BURST,
    MESSAGES_PER_SECOND,
    MatrixError,
    MatrixTestClient,
    SynapseServer,
    find_synapse,
    require_synapse,
    synapse,
    synapse_server,
)

__all__ = ["synapse", "synapse_server"]  # the fixtures, imported so that pytest finds them


def is_message(body: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "m.room.message" and e["content"].get("body") == body


def is_event(event_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event_id"] == event_id


async def send_until_refused(
    client: MatrixTestClient, room: str, limit: int
) -> tuple[list[str], MatrixError]:
    """Send "flood 0", "flood 1", ... until one is refused: the ids sent, and the error."""
    sent: list[str] = []
    for n in range(limit):
        try:
            sent.append(await client.send_text(room, f"flood {n}"))
        except MatrixError as error:
            return sent, error
    raise AssertionError(f"all {limit} messages went through")


async def test_two_users_talk(synapse: SynapseServer) -> None:
    alice, bob = await asyncio.gather(
        synapse.register("alice", "correct-horse"), synapse.register("bob", "battery-staple")
    )
    assert alice.user_id == "@alice:taskbot.test"
    async with synapse.client(alice) as a, synapse.client(bob) as b:
        assert (await b.whoami())["user_id"] == bob.user_id
        room = await a.create_room("taskbot test")
        await a.invite(room, bob.user_id)
        assert await b.join(room) == room

        hello = await a.send_text(
            room,
            "bob: hello",
            formatted_body=f'<a href="https://matrix.to/#/{bob.user_id}">bob</a>: hello',
            mentions=[bob.user_id],
        )
        seen = await b.wait_for(room, is_message("bob: hello"))
        assert seen["event_id"] == hello
        assert seen["sender"] == alice.user_id
        assert seen["content"]["m.mentions"] == {"user_ids": [bob.user_id]}
        assert seen["content"]["format"] == "org.matrix.custom.html"

        reply = await b.send_text(room, "hi alice", reply_to=hello)
        threaded = await b.send_text(room, "in a thread", thread_root=hello)
        seen_reply = await a.wait_for(room, is_event(reply))
        assert seen_reply["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": hello}}
        seen_threaded = await a.wait_for(room, is_event(threaded))
        assert seen_threaded["content"]["m.relates_to"] == {
            "rel_type": "m.thread",
            "event_id": hello,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": hello},
        }

        events = await a.messages(room)
        assert events[0]["type"] == "m.room.create"  # oldest first
        assert [e["event_id"] for e in events[-3:]] == [hello, reply, threaded]

        with pytest.raises(AssertionError, match=r"(?s)within 0\.5s.*bob: hello"):
            await b.wait_for(room, is_message("never sent"), timeout=0.5)


async def test_power_level_in_room_state(synapse: SynapseServer) -> None:
    alice, bob = await asyncio.gather(
        synapse.register("alice", "correct-horse"), synapse.register("bob", "battery-staple")
    )
    async with synapse.client(alice) as a, synapse.client(bob) as b:
        # Synapse's default, room version 12: the creator's power is implicit (and the
        # room id a bare hash); in version 11 the creator is listed with 100.
        room = await a.create_room(invite=[bob.user_id], encrypted=True)
        old_room = await a.create_room(invite=[bob.user_id], room_version="11")
        assert ":" not in room
        assert old_room.endswith(":taskbot.test")
        for room_id, creator in ((room, {}), (old_room, {alice.user_id: 100})):
            await b.join(room_id)
            before = await b.state(room_id, "m.room.power_levels")
            assert before["users"] == creator

            changed = await a.set_power_level(room_id, bob.user_id, 50)
            after = await b.state(room_id, "m.room.power_levels")
            assert after["users"] == {**creator, bob.user_id: 50}
            event = await b.wait_for(room_id, is_event(changed))
            assert event["type"] == "m.room.power_levels"
            assert event["sender"] == alice.user_id
            assert event["content"]["users"][bob.user_id] == 50

        encryption = await b.state(room, "m.room.encryption")
        assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"


async def test_sending_too_fast_gets_429(synapse: SynapseServer) -> None:
    carol = await synapse.register("carol", "carol-secret")
    async with synapse.client(carol) as c:
        started = time.monotonic()
        room = await c.create_room("flood")  # creating the room takes one of the burst
        sent, error = await send_until_refused(c, room, 3 * MESSAGE_BURST)
        elapsed = time.monotonic() - started
        assert error.status == 429
        assert error.errcode == "M_LIMIT_EXCEEDED"
        assert error.body["error"] == "Too Many Requests"
        retry_after_ms = error.retry_after_ms
        assert retry_after_ms is not None
        assert 0 < retry_after_ms <= 1000 / MESSAGES_PER_SECOND
        assert int(error.headers["Retry-After"]) == -(-retry_after_ms // 1000)
        # The bucket refills by MESSAGES_PER_SECOND while the burst goes out.
        assert MESSAGE_BURST - 1 <= len(sent) <= MESSAGE_BURST - 1 + elapsed * MESSAGES_PER_SECOND

        bodies = [e["content"]["body"] for e in await c.messages(room) if "body" in e["content"]]
        assert bodies == [f"flood {n}" for n in range(len(sent))]

        # A rate, not a ban: once the wait Synapse named is over, the next one goes through.
        await asyncio.sleep(retry_after_ms / 1000)
        await c.send_text(room, "after the wait")


async def test_unlimited_user_is_not_limited(synapse_server: SynapseServer) -> None:
    # On the module's homeserver: a user name no other test uses.
    dave = await synapse_server.register("dave", "dave-secret")
    await synapse_server.unlimit(dave)
    override = await synapse_server.admin_request(
        "GET", f"/v1/users/{dave.user_id}/override_ratelimit"
    )
    assert override == {"messages_per_second": 0, "burst_count": 0}
    async with synapse_server.client(dave) as d:
        room = await d.create_room("no limit")
        count = 4 * MESSAGE_BURST
        for n in range(count):
            await d.send_text(room, f"burst {n}")
        await d.set_power_level(room, "@nobody:taskbot.test", 10)
        bodies = [e["content"]["body"] for e in await d.messages(room) if "body" in e["content"]]
        assert bodies == [f"burst {n}" for n in range(count)]


def test_missing_synapse_skips_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TASKBOT_SYNAPSE_VENV", str(tmp_path / "no-such-venv"))
    assert find_synapse() is None
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="run scripts/install-matrix-server"):
        require_synapse()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="run scripts/install-matrix-server"):
        require_synapse()
