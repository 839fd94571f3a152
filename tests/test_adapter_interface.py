"""A new chat platform plugs into the core with one registration call and no change under
bot/: a toy room adapter, defined here, gets its own triggers, the command table's
permissions, its replies, and a request resumed after a restart."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.commands import Command, Context
from bot.core.request import Origin, Request
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.service import Bot
from bot.store import RequestRecord, RequestState, SqliteStore
from grammar import Triggers


@dataclass
class Room:
    """A chat room: every line said in it, by whom."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def said_by(self, who: str) -> list[str]:
        return [text for speaker, text in self.lines if speaker == who]


@dataclass
class RoomReplier:
    room: Room
    reactions: list[str] = field(default_factory=list)

    async def post(self, text: str) -> str:
        self.room.lines.append(("bot", text))
        return str(len(self.room.lines))

    async def react(self, reaction: str) -> None:
        self.reactions.append(reaction)


@dataclass(frozen=True, slots=True)
class RoomOrigin(Origin):
    badge: str = "guest"  # what the room says of its member: guest, member or op
    pull_request: bool = False  # the room discusses a pull request ...
    fork: bool = False  # ... from a fork


BADGES = {"op": Level.ADMIN, "member": Level.READ}


class RoomAdapter(Adapter):
    """Commands start with `!`; ops may do anything, members read, guests nothing."""

    source = "room"

    def __init__(self, rooms: dict[str, Room]) -> None:
        self.rooms = rooms

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        return Triggers(names=names, bang=True)

    async def level_of(self, request: Request) -> Level:
        origin = request.origin
        badge = origin.badge if isinstance(origin, RoomOrigin) else "guest"
        return BADGES.get(badge, Level.NONE)

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        return f"{request.actor} is {have.label} in this room; !{verb} needs {need.label}"

    async def replier_for(self, record: RequestRecord) -> RoomReplier | None:
        room = self.rooms.get(record.place)
        return RoomReplier(room) if room is not None else None

    async def say(
        self, bot: Bot, room: str, who: str, badge: str, text: str, *, fork: bool = False
    ) -> None:
        origin = RoomOrigin(badge, pull_request=fork, fork=fork)
        request = Request(self.source, who, room, text, origin=origin)
        self.rooms[room].lines.append((who, text))
        await bot.handle(request, RoomReplier(self.rooms[room]))


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=1.0) as running:
        running.bot.settings = replace(running.bot.settings, poll_interval=0.05)
        yield running
    await store.close()


def a_new_test(env: Embedded) -> str:
    ran = env.push.push.label_to_taskid
    return next(x for x in env.push.push.graph if x.startswith("test-") and x not in ran)


async def test_a_toy_adapter_plugs_in_with_one_call(env: Embedded) -> None:
    rooms = {"#ci": Room()}
    adapter = RoomAdapter(rooms)
    env.bot.register(adapter)
    room = rooms["#ci"]

    # Its own triggers: `!jobs` is a command here, `taskbot: jobs` is not.
    await adapter.say(env.bot, "#ci", "ann", "member", "taskbot: jobs xpcshell")
    assert room.said_by("bot") == []
    await adapter.say(env.bot, "#ci", "ann", "member", "!jobs xpcshell")
    (listing,) = room.said_by("bot")
    assert re.match(r"\d+ jobs? on ", listing)

    # Permissions from the command table: schedule needs write, a member reads.
    label = a_new_test(env)
    before = len(env.tc.queue.tasks)
    await adapter.say(env.bot, "#ci", "ann", "member", f"!schedule {label}")
    assert room.said_by("bot")[-1] == (
        "You may not `schedule` here: ann is read in this room; !schedule needs write"
    )
    await adapter.say(env.bot, "#ci", "gus", "guest", "!status")
    assert room.said_by("bot")[-1].endswith("gus is none in this room; !status needs read")
    assert len(env.tc.queue.tasks) == before

    # An op schedules; the bot stops following the request (as a process that died would).
    await adapter.say(env.bot, "#ci", "olga", "op", f"!schedule {label}")
    accepted = room.said_by("bot")[-1]
    found = re.match(r"\[(r[0-9a-f]+)\] schedule", accepted)
    assert found, accepted
    request_id = found[1]
    assert len(env.tc.queue.tasks) == before + 1
    for task in list(env.bot.background):
        task.cancel()
    assert await env.bot.idle(5)
    record = await env.store.request(request_id)
    assert record is not None
    assert record.state == RequestState.SUBMITTED

    # A new process with the same name on the same store: the resumed request reports in
    # the room it was asked in, through the adapter registered there.
    rooms_after_restart = {"#ci": Room()}
    restarted = Bot(env.bot.settings, env.store, env.bot.clients, instance=env.bot.instance)
    restarted.register(RoomAdapter(rooms_after_restart))
    elsewhere = RoomReplier(Room())
    assert await restarted.resume(elsewhere) == [request_id]
    assert await restarted.idle(30)
    assert rooms_after_restart["#ci"].said_by("bot")[-1] == f"[{request_id}] finished: 1 ok"
    assert elsewhere.room.lines == []
    finished = await env.store.request(request_id)
    assert finished is not None
    assert finished.state == RequestState.FINISHED


async def test_help_lists_what_this_adapter_offers(env: Embedded) -> None:
    rooms = {"#ci": Room()}
    adapter = RoomAdapter(rooms)
    env.bot.register(adapter)
    await adapter.say(env.bot, "#ci", "ann", "member", "!help")
    (listing,) = rooms["#ci"].said_by("bot")
    assert "schedule JOBS" in listing
    assert "\n  more" not in listing  # its replies are not paged: `more` is not offered
    await adapter.say(env.bot, "#ci", "ann", "member", "!more")
    assert rooms["#ci"].said_by("bot")[-1] == (
        "`more` is not a command here; `help` lists the ones that are."
    )


async def test_an_adapter_that_cannot_vouch_for_a_fork_never_runs_its_code(
    env: Embedded,
) -> None:
    """The fork gate is the core's: an adapter that says nothing about approvals gets the
    safe default, so a gated command on a fork's code is refused even to an op."""
    rooms = {"#pr": Room()}
    adapter = RoomAdapter(rooms)
    env.bot.register(adapter)
    before = len(env.tc.queue.tasks)
    await adapter.say(env.bot, "#pr", "olga", "op", f"!schedule {a_new_test(env)}", fork=True)
    assert rooms["#pr"].said_by("bot")[-1] == (
        "You may not `schedule` here: #pr runs code from a fork, and nobody here can vouch "
        "for it: `schedule` is not run on code under review from a fork."
    )
    await adapter.say(env.bot, "#pr", "olga", "op", "!jobs xpcshell", fork=True)
    assert re.match(r"\d+ jobs? on ", rooms["#pr"].said_by("bot")[-1])  # reading is not gated
    assert len(env.tc.queue.tasks) == before


def test_no_command_or_project_asks_less_than_read() -> None:
    """Someone with no access (a source with no adapter, a stranger) may do nothing: no
    command can be declared, or configured, to need less than read."""

    async def anything(ctx: Context, cmd: object) -> None:
        """status"""

    with pytest.raises(RuntimeError, match="must need read at least"):
        Command("status", anything, Level.NONE)
    lowered = ProjectSettings("open", permissions={"status": "none", "schedule": "read"})
    assert lowered.need("status", Level.READ) == Level.READ
    assert lowered.need("schedule", Level.WRITE) == Level.READ
