"""The Matrix adapter against hostile and careless users on a real Synapse: forged edits,
deleted commands, rooms run by strangers, a restart with messages still waiting, kicks,
upgrades, revoked sessions, rooms without reactions, bursts answered in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from tests.matrixserver import synapse
from tests.test_matrix_e2e import (
    Room,
    bot_unlimited,
    from_bot,
    reactions,
    reply_to,
    room,
    unscheduled_test,
)

__all__ = ["bot_unlimited", "room", "synapse"]  # the fixtures, for pytest to find
Event = dict[str, Any]


def edit_content(target: str, body: str) -> dict[str, Any]:
    """An edit as clients send it: the new text inside, a ``* `` fallback outside."""
    return {
        "msgtype": "m.text",
        "body": "* " + body,
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": target},
    }


def bodies(events: list[Event], room: Room, event_id: str) -> list[str]:
    return [e["content"]["body"] for e in events if reply_to(room, event_id)(e)]


async def answered_up_to_here(room: Room) -> None:
    """A status from the owner, answered: everything sent before it has been read."""
    asked = await room.owner.send_text(room.room_id, "taskbot: status")
    await room.owner.wait_for(room.room_id, reply_to(room, asked), timeout=40)


async def held_while_answering(room: Room) -> asyncio.Event:
    """From now on the bot takes messages but does not get to answering them until the
    event returned is set (a busy bot, or one about to die)."""
    gate = asyncio.Event()
    answer = room.adapter.answer

    async def held(*args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await answer(*args, **kwargs)

    room.adapter.answer = held  # type: ignore[method-assign]
    return gate


async def taken(room: Room) -> None:
    async with asyncio.timeout(20):
        while not room.adapter._in_progress:
            await asyncio.sleep(0.05)


async def test_a_forged_edit_of_anothers_message_is_ignored(room: Room) -> None:
    """Synapse lets anyone send an m.replace of anyone's message; clients ignore such edits,
    and so does the bot: nothing answers it, and the author's own edit later still runs."""
    label = unscheduled_test(room.env)
    line = f"taskbot: schedule {label} --dry-run"
    original = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, original, "No requests yet"))
    await room.member.send_raw(
        room.room_id, "m.room.message", edit_content(original, f"taskbot: status\n{line}")
    )
    await answered_up_to_here(room)
    await room.sheriff.send_raw(
        room.room_id, "m.room.message", edit_content(original, f"taskbot: status\n{line}")
    )
    await room.sheriff.wait_for(room.room_id, reply_to(room, original, "1 new task"))
    events = await room.sheriff.messages(room.room_id)
    assert not [b for b in bodies(events, room, original) if "You may not" in b]
    assert reactions(events, original).count("😕") == 0


async def test_a_command_deleted_while_it_waited_is_not_run(room: Room) -> None:
    label = unscheduled_test(room.env)
    gate = await held_while_answering(room)
    before = len(room.env.tc.queue.tasks)
    asked = await room.sheriff.send_text(room.room_id, f"taskbot: schedule {label}")
    await taken(room)
    await room.sheriff.request(
        "PUT", f"/rooms/{room.room_id}/redact/{asked}/oops", {"reason": "wrong push"}
    )
    gate.set()
    await answered_up_to_here(room)
    events = await room.sheriff.messages(room.room_id)
    assert bodies(events, room, asked) == []
    assert len(room.env.tc.queue.tasks) == before


async def test_power_in_a_room_a_stranger_made_grants_nothing(room: Room) -> None:
    """A writer invites the bot to a room a member made: the member, all-powerful there, is
    still a reader, and is told power counts only in the configured rooms."""
    room.adapter.settings = replace(
        room.adapter.settings, write_users=frozenset({room.sheriff.user_id})
    )
    theirs = await room.member.create_room("totally legit", preset="public_chat")
    await room.sheriff.join(theirs)
    await room.member.set_power_level(theirs, room.sheriff.user_id, 50)
    await room.sheriff.invite(theirs, room.bot_user.user_id)
    async with asyncio.timeout(20):
        while theirs not in room.adapter.rooms:
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the bot's join reaches its next sync
    before = len(room.env.tc.queue.tasks)
    asked = await room.member.send_text(theirs, f"taskbot: schedule {unscheduled_test(room.env)}")
    refused = await room.member.wait_for(theirs, reply_to(room, asked, "You may not"))
    assert (
        "power levels count only in the rooms the bot was configured for"
        in (refused["content"]["body"])
    )
    assert len(room.env.tc.queue.tasks) == before
    # The writer who invited it may write there.
    allowed = await room.sheriff.send_text(
        theirs, f"taskbot: schedule {unscheduled_test(room.env)} --dry-run"
    )
    await room.sheriff.wait_for(theirs, reply_to(room, allowed, "1 new task"))


async def test_messages_waiting_at_a_restart_are_judged_with_the_rooms_state(
    room: Room,
) -> None:
    """A moderator's command was taken but not answered when the bot stopped: after the
    restart it is answered as a moderator's, once."""
    label = unscheduled_test(room.env)
    await held_while_answering(room)
    asked = await room.sheriff.send_text(room.room_id, f"taskbot: schedule {label} --dry-run")
    await taken(room)
    await room.restart_bot()
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "1 new task"))
    await answered_up_to_here(room)
    events = await room.sheriff.messages(room.room_id)
    assert len(bodies(events, room, asked)) == 1


async def test_an_edit_is_answered_in_the_thread_and_each_answer_is_sent(room: Room) -> None:
    root = await room.sheriff.send_text(room.room_id, "mochitest-1 is orange again")
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status", thread_root=root)
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))
    # The same command twice in the edit: the new one reads the same as the first answer,
    # and is a message of its own all the same.
    await room.sheriff.send_raw(
        room.room_id, "m.room.message", edit_content(asked, "taskbot: status\ntaskbot: status")
    )
    await answered_up_to_here(room)
    events = await room.sheriff.messages(room.room_id)
    answers = [e for e in events if reply_to(room, asked)(e)]
    assert len(answers) == 2
    assert all(e["content"]["m.relates_to"]["event_id"] == root for e in answers)


async def test_a_burst_sent_while_away_is_answered_in_order(room: Room) -> None:
    await room.adapter.stop()
    sent = [
        await room.sheriff.send_text(room.room_id, f"taskbot: jobs zq{n:02d}") for n in range(20)
    ]
    await room.restart_bot()
    await room.sheriff.wait_for(room.room_id, reply_to(room, sent[-1]), timeout=60)
    events = await room.sheriff.messages(room.room_id, limit=200)
    order = [
        sent.index(relates["m.in_reply_to"]["event_id"])
        for e in events
        if from_bot(room)(e) and e["type"] == "m.room.message"
        for relates in [e["content"].get("m.relates_to") or {}]
        if (relates.get("m.in_reply_to") or {}).get("event_id") in sent
    ]
    assert order == list(range(20))


async def test_kicked_then_invited_back_it_answers_again(room: Room) -> None:
    await room.owner.request(
        "POST", f"/rooms/{room.room_id}/kick", {"user_id": room.bot_user.user_id}
    )
    async with asyncio.timeout(20):
        while room.room_id in room.adapter.rooms:
            await asyncio.sleep(0.1)
    await room.owner.invite(room.room_id, room.bot_user.user_id)  # the owner is no writer
    async with asyncio.timeout(20):
        while room.room_id not in room.adapter.rooms:
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))


async def test_an_upgraded_room_is_followed(room: Room) -> None:
    upgraded = await room.owner.request(
        "POST", f"/rooms/{room.room_id}/upgrade", {"new_version": "12"}
    )
    new = upgraded["replacement_room"]
    await room.sheriff.join(new)  # the bot joins by itself: the room is public
    async with asyncio.timeout(20):
        while new not in room.adapter.rooms:
            await asyncio.sleep(0.1)
    assert room.room_id not in room.adapter.rooms
    assert new in room.adapter.configured  # the operators' room, moved
    await asyncio.sleep(1.0)
    await room.owner.set_power_level(new, room.sheriff.user_id, 50)
    asked = await room.sheriff.send_text(
        new, f"taskbot: schedule {unscheduled_test(room.env)} --dry-run"
    )
    await room.sheriff.wait_for(new, reply_to(room, asked, "1 new task"))
    await room.restart_bot()  # and after a restart too
    assert new in room.adapter.configured
    again = await room.sheriff.send_text(new, "taskbot: help")
    await room.sheriff.wait_for(new, reply_to(room, again, "Commands"))


async def test_after_its_session_is_logged_out_the_bot_logs_in_again(room: Room) -> None:
    adapter = await room.restart_bot(access_token=None, password="bot-password-1")
    token = adapter.client.access_token
    session = room.server.client(replace(room.bot_user, access_token=token))
    await session.request("POST", "/logout", {})
    await session.close()
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))
    assert adapter.client.access_token != token


async def test_a_room_that_allows_no_reactions_still_gets_answers(room: Room) -> None:
    levels = await room.owner.state(room.room_id, "m.room.power_levels")
    levels.setdefault("events", {})["m.reaction"] = 50
    await room.owner.set_state(room.room_id, "m.room.power_levels", levels)
    await asyncio.sleep(0.5)
    asked = await room.sheriff.send_text(room.room_id, "taskbot: status")
    await room.sheriff.wait_for(room.room_id, reply_to(room, asked, "No requests yet"))


async def test_talking_about_the_bot_while_mentioning_it_is_not_a_command(room: Room) -> None:
    said = [
        await room.sheriff.send_text(room.room_id, text, mentions=[room.bot_user.user_id])
        for text in ("taskbot thanks, that worked", "taskbot is broken again, can someone look")
    ]
    await answered_up_to_here(room)
    events = await room.sheriff.messages(room.room_id)
    assert all(bodies(events, room, event_id) == [] for event_id in said)


async def test_an_upgraded_private_room_is_joined_when_its_owner_invites_the_bot(
    room: Room,
) -> None:
    await room.owner.set_state(room.room_id, "m.room.join_rules", {"join_rule": "invite"})
    upgraded = await room.owner.request(
        "POST", f"/rooms/{room.room_id}/upgrade", {"new_version": "12"}
    )
    new = upgraded["replacement_room"]
    async with asyncio.timeout(20):
        while new not in room.adapter.replaced:  # it saw the tombstone, could not join yet
            await asyncio.sleep(0.1)
    assert new not in room.adapter.rooms
    await room.owner.invite(new, room.bot_user.user_id)  # the owner is no writer
    async with asyncio.timeout(20):
        while new not in room.adapter.rooms:
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    asked = await room.owner.send_text(new, "taskbot: status")
    await room.owner.wait_for(new, reply_to(room, asked, "No requests yet"))
