"""The Matrix connection: log in, join the rooms, sync (the token kept in the store), keep each
command message in the inbox before moving on, answer them in order per room, and reply as
threaded notices with the status card edited in place, all on the bot's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinResponse,
    LoginResponse,
    MessageDirection,
    RoomGetEventResponse,
    RoomMessagesResponse,
    RoomSendResponse,
    SyncResponse,
    WhoamiResponse,
)

from bot.adapters.matrix.messages import (
    addressed,
    command_text,
    edit,
    mentions,
    message,
    reaction,
    relation_of,
)
from bot.adapters.matrix.people import MatrixOrigin, level_of, may_invite, refusal
from bot.adapters.matrix.settings import MatrixSettings
from bot.core import leases
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.backoff import Backoff
from bot.core.request import Request
from bot.metrics import DELIVERIES_PARKED, ERRORS
from bot.service import Bot, clean
from bot.store import RequestRecord
from grammar import Triggers, extract_commands

log = logging.getLogger(__name__)
SOURCE = "matrix"
# What the bot asks the homeserver for: the rooms' messages and the state it needs (power
# levels, encryption, members), nothing of presence, typing or account data.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "timeline": {"limit": 100},
    },
}
GAP_PAGES = 10  # pages of 100 events fetched to fill a gap in a room's timeline
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0)  # between tries of a message that failed
CONCURRENCY = 4  # messages answered at once (in different rooms)
ENCRYPTED_NOTICE_EVERY = 3600.0  # seconds between two notices in one encrypted room
STABLE_AFTER = 60.0  # a sync loop that lasted this long resets the backoff
# From room version 12, a room's creators have a power above any number (MSC4289).
PRIVILEGED_CREATORS_FROM = 12
CREATOR_POWER = 2**53 - 1  # the largest power level the spec allows
UPGRADE_OF = "upgrade-of:"  # a kept room that replaced another
READY_WAIT = 60.0  # seconds a reply waits for the bot to be logged in before it fails
MORE = "… {count} more line{s}: say `{name}: more`."
STALE = (
    "I was away when this was sent ({minutes} minutes ago), so I did not run it: "
    "send it again if it is still wanted."
)
ENCRYPTED = (
    "This room is end-to-end encrypted, and taskbot does not read encrypted rooms: I cannot "
    "see or answer commands here. Talk to me in an unencrypted room."
)
PARKED = (
    "I could not answer this after {attempts} tries ({why}); an operator can retry it "
    "(`python -m bot deliveries`)."
)


class MatrixSendError(RuntimeError):
    """The homeserver did not take a message (after waiting out its rate limits)."""


class MatrixSyncError(RuntimeError):
    """The homeserver refused to log the bot in or to sync."""

    def __init__(self, message: str, errcode: str | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


def _txn(*parts: str) -> str:
    """A transaction id from what a message is: sent again (a retry, a message handled
    again after a restart), it is the same, and the homeserver keeps one event for both."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
    return f"taskbot.{digest}"


@dataclass
class MatrixReplier:
    """Replies to one person in one room: notices in reply to their message (in its thread),
    reactions on it, a status card edited in place, long replies a page at a time."""

    adapter: MatrixAdapter
    room_id: str
    user_id: str
    reply_to: str | None = None  # the command's event (None: a request resumed later)
    thread_root: str | None = None
    # What brought the reply (the message's event, or an edit of it; a resumed request):
    # the same cause and text make the same transaction, whatever tries it again.
    cause: str = ""
    _sent: dict[str, int] = field(default_factory=dict)

    async def post(self, text: str) -> str:
        lines = text.split("\n")
        page = self.adapter.settings.page_lines
        if len(lines) > page:
            self.adapter.hold(self.room_id, self.user_id, lines[page - 1 :])
            lines = [*lines[: page - 1], self.adapter.more_note(len(lines) - page + 1)]
        body = "\n".join(lines)
        # The same text a second time in answer to one message is a second message.
        count = self._sent[body] = self._sent.get(body, 0) + 1
        content = message(
            body,
            reply_to=self.reply_to,
            thread_root=self.thread_root,
            mention=self.user_id,
            links=self.adapter.links(),
        )
        txn = _txn("post", self.room_id, self.cause or self.user_id, body, str(count))
        return await self.adapter.send(self.room_id, "m.room.message", content, txn)

    async def edit(self, reference: str, text: str) -> None:
        txn = _txn("edit", self.room_id, reference, text)
        content = edit(reference, text, self.adapter.links())
        await self.adapter.send(self.room_id, "m.room.message", content, txn)

    async def react(self, reaction_name: str) -> None:
        if self.reply_to is None:
            return
        content = reaction(self.reply_to, reaction_name)
        txn = _txn("react", self.room_id, self.cause or self.reply_to, reaction_name)
        try:
            await self.adapter.send(self.room_id, "m.reaction", content, txn)
        except MatrixSendError as error:  # a room that allows no reactions still gets answers
            log.info("no reaction in %s: %s", self.room_id, error)

    async def more(self) -> bool:
        """Send the next page of a long reply; False when nothing is held."""
        held = self.adapter.take_held(self.room_id, self.user_id)
        if not held:
            return False
        await self.post("\n".join(held))
        return True


class MatrixAdapter(Adapter):
    """One account on one homeserver, kept synced for as long as the bot runs; who may do
    what goes by Matrix user id and room power level."""

    source = SOURCE

    def __init__(
        self,
        bot: Bot,
        settings: MatrixSettings,
        *,
        client: AsyncClient | None = None,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.client = client or AsyncClient(
            settings.homeserver,
            settings.user_id,
            config=AsyncClientConfig(
                max_limit_exceeded=settings.rate_limit_retries,
                max_timeouts=2,
                request_timeout=60,
                backoff_factor=0.5,
            ),
        )
        self.client.add_response_callback(self._on_error_response, ErrorResponse)
        self.ready = asyncio.Event()  # logged in, rooms joined: messages may go
        self.synced = asyncio.Event()  # at least one sync has been taken in
        self.display_name: str | None = None
        self.rooms: dict[str, str | None] = {}  # served room id -> its project (or None)
        self.aliases: dict[str, str] = {}  # configured alias -> room id
        self.invited: dict[str, str] = {}  # room joined by invitation -> who invited
        # Rooms the operators named (joined, by id) -> their project: power levels count there.
        self.configured: dict[str, str | None] = {}
        self.replaced: dict[str, str] = {}  # the new room of an upgraded one -> the old
        self._seq = 0  # the order messages were kept in
        self._started_ms = time.time() * 1000
        self.limits_waited = 0  # M_LIMIT_EXCEEDED answers waited out
        self.syncs = 0
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self._pages: dict[tuple[str, str], list[str]] = {}
        self._looked_at: set[str] = set()  # rooms checked for encryption since start
        self._creators: dict[str, frozenset[str]] = {}  # rooms whose creators outrank all
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_progress: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        bot.register(self)

    # --- the core's questions ---------------------------------------------------------------

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        """``taskbot: verb``, ``@taskbot verb`` or ``!verb`` in a room; every line of a
        direct chat. Code blocks and quotations never hold commands."""
        return Triggers(
            names=names,
            mention=True,
            address=True,
            bang=self.settings.bang_commands,
            markdown=True,
            direct=request.direct,
        )

    async def level_of(self, request: Request) -> Level:
        origin = request.origin
        if not isinstance(origin, MatrixOrigin):
            return Level.NONE
        return level_of(self.settings, origin.user_id, origin.power)

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        origin = request.origin
        if not isinstance(origin, MatrixOrigin):
            origin = MatrixOrigin(user_id=request.actor, room_id=request.place)
        return refusal(self.settings, origin, verb, need)

    def shared(self, request: Request) -> bool:
        """A room of several people: `status` there lists the room's requests."""
        return not request.direct

    def private(self, record: RequestRecord) -> bool:
        """A request asked for in a direct chat with the bot."""
        return self.is_direct(record.place)

    def failed_here(self, error: BaseException) -> bool:
        return isinstance(error, MatrixSendError)

    async def replier_for(self, record: RequestRecord) -> MatrixReplier | None:
        """Where a request taken up again after a restart reports: its room, mentioning who
        asked; sent once the bot is logged in again."""
        if not record.place.startswith("!"):
            return None
        return MatrixReplier(self, record.place, record.actor, cause=f"resumed:{record.id}")

    # --- life cycle ----------------------------------------------------------------------

    def install(self, app: Any) -> None:
        """Run alongside the HTTP server (aiohttp's start-up and clean-up hooks)."""
        app.on_startup.append(lambda _app: self.start())
        app.on_cleanup.append(lambda _app: self.stop())

    async def start(self) -> None:
        self._stopping.clear()
        self._started_ms = time.time() * 1000
        self._tasks = [
            asyncio.create_task(self._stay_synced()),
            asyncio.create_task(self._work()),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()

    def _on_error_response(self, response: ErrorResponse) -> None:
        if response.status_code == "M_LIMIT_EXCEEDED":
            self.limits_waited += 1
            log.warning(
                "Matrix rate limit: waiting %s ms as the homeserver asks", response.retry_after_ms
            )

    async def _stay_synced(self) -> None:
        """Log in, join, sync; when that fails (the homeserver is down, the network gone),
        wait (exponential backoff with jitter), then again from the kept token."""
        backoff = Backoff(self.settings.reconnect_base, self.settings.reconnect_cap, STABLE_AFTER)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                if not self.ready.is_set():
                    await self._log_in()
                await self._sync_forever()
            except asyncio.CancelledError:
                raise
            except MatrixSyncError as error:
                ERRORS.labels(SOURCE).inc()
                log.warning("Matrix: %s", error)
                if error.errcode == "M_UNKNOWN_TOKEN":
                    self.ready.clear()  # logged out (or the token revoked): log in again
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                ERRORS.labels(SOURCE).inc()
                log.warning("Matrix: %s", error)
            except Exception:
                ERRORS.labels(SOURCE).inc()
                log.exception("Matrix sync failed")
            delay = backoff.delay(loop.time() - started)
            log.info("syncing with Matrix again in %.1fs", delay)
            await asyncio.sleep(delay)

    async def _log_in(self) -> None:
        settings, client, store = self.settings, self.client, self.bot.store
        if settings.access_token:
            client.access_token = settings.access_token
            client.user_id = settings.user_id
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse):
                raise MatrixSyncError(
                    f"MATRIX_ACCESS_TOKEN was refused: {_said(who)}", _errcode(who)
                )
            if who.user_id != settings.user_id:
                raise MatrixSyncError(
                    f"MATRIX_ACCESS_TOKEN belongs to {who.user_id}, not MATRIX_USER_ID "
                    f"{settings.user_id}"
                )
            client.device_id = who.device_id or ""
        else:
            # One device for the bot across restarts: its transaction ids stay its own.
            device_key = f"device:{settings.user_id}"
            client.device_id = await store.adapter_value(SOURCE, device_key) or ""
            assert settings.password is not None
            login = await client.login(settings.password, device_name="taskbot")
            if not isinstance(login, LoginResponse):
                raise MatrixSyncError(f"MATRIX_PASSWORD login was refused: {_said(login)}")
            await store.set_adapter_value(SOURCE, device_key, login.device_id)
        with contextlib.suppress(Exception):
            shown = await client.get_displayname(settings.user_id)
            self.display_name = getattr(shown, "displayname", None)
        await self._join_configured()
        for key, why in (await store.adapter_values(SOURCE, "room:")).items():
            room_id = key.removeprefix("room:")
            if why.startswith(UPGRADE_OF):  # the new room of a configured one is configured
                old = why.removeprefix(UPGRADE_OF)
                if old in self.configured:
                    self.configured[room_id] = self.configured[old]
                    self.rooms[room_id] = self.configured[old]
                continue
            self.invited[room_id] = why
            self.rooms.setdefault(room_id, None)
        self.ready.set()
        log.info("on Matrix as %s in %d rooms", settings.user_id, len(self.rooms))

    def configured_rooms(self) -> list[tuple[str, str | None]]:
        """MATRIX_ROOMS and every project's ``matrix_rooms``, with their projects."""
        found: dict[str, str | None] = dict.fromkeys(self.settings.rooms)
        for project in self.bot.settings.projects.values():
            for room in project.matrix_rooms:
                found[room] = project.name
        return list(found.items())

    async def _join_configured(self) -> None:
        for room, project in self.configured_rooms():
            joined = await self.client.join(room)
            if not isinstance(joined, JoinResponse):
                log.warning("could not join the Matrix room %s: %s", room, _said(joined))
                continue
            if room.startswith("#"):
                self.aliases[room] = joined.room_id
            project = project or self.configured.get(joined.room_id)
            self.configured[joined.room_id] = project
            self.rooms[joined.room_id] = project

    async def _sync_forever(self) -> None:
        token_key = f"sync:{self.settings.user_id}"
        store = self.bot.store
        token = await store.adapter_value(SOURCE, token_key)
        full_state = token is not None  # the rooms' state, once, after a restart
        while not self._stopping.is_set():
            response = await self.client.sync(
                timeout=int(self.settings.sync_timeout * 1000),
                sync_filter=SYNC_FILTER,
                since=token,
                full_state=full_state,
            )
            if not isinstance(response, SyncResponse):
                raise MatrixSyncError(f"sync refused: {_said(response)}", _errcode(response))
            await self.take(response, since=token)
            token = response.next_batch
            # Every command up to here is in the inbox: only now is the token moved on.
            await store.set_adapter_value(SOURCE, token_key, token)
            full_state = False
            self.syncs += 1
            self.synced.set()

    # --- what a sync brings ------------------------------------------------------------------

    async def take(self, response: SyncResponse, *, since: str | None) -> None:
        """Answer invitations, note rooms left, and keep each new command message in the
        inbox. The first sync ever (no token) is history: nothing in it is run."""
        for room_id, invited in response.rooms.invite.items():
            await self._invited_to(room_id, invited.invite_state)
        for room_id in response.rooms.leave:
            if room_id in self.rooms:
                log.info("no longer in the Matrix room %s", room_id)
                self.rooms.pop(room_id, None)
                self.invited.pop(room_id, None)
                await self.bot.store.set_adapter_value(SOURCE, f"room:{room_id}", None)
        kept = 0
        for room_id, joined in response.rooms.join.items():
            events = [e.source for e in joined.timeline.events]
            state = [e.source for e in joined.state] + events
            self._note_creators(room_id, state)
            await self._follow_upgrade(room_id, state)
            if joined.timeline.limited and since is not None and room_id in self.rooms:
                events = await self._fill_gap(room_id, joined.timeline.prev_batch, since) + events
            await self._encryption_noticed(room_id, events)
            if since is None:
                # The first sync ever: what was said before the bot started is history.
                events = [e for e in events if _sent_at(e) >= self._started_ms]
            kept += await self._keep(room_id, _after_own_join(events, self.settings.user_id))
        if kept:
            self._wake.set()

    async def _fill_gap(
        self, room_id: str, prev_batch: str | None, since: str
    ) -> list[dict[str, Any]]:
        """The events a limited sync left out, between the kept token and the timeline it
        sent: a restart after a busy hour misses no command."""
        earlier: list[dict[str, Any]] = []
        start = prev_batch
        for _ in range(GAP_PAGES):
            if start is None:
                break
            page = await self.client.room_messages(
                room_id, start=start, end=since, direction=MessageDirection.back, limit=100
            )
            if not isinstance(page, RoomMessagesResponse) or not page.chunk:
                break
            earlier = [e.source for e in reversed(page.chunk)] + earlier
            if page.end is None or page.end == start:
                break
            start = page.end
        else:
            log.warning("Matrix room %s: more than %d events missed", room_id, GAP_PAGES * 100)
        return earlier

    async def _follow_upgrade(self, room_id: str, events: list[dict[str, Any]]) -> None:
        """A served room that was upgraded (``m.room.tombstone``) is served no more; its
        replacement is joined and served instead, as the old room was (configured or not)."""
        if room_id not in self.rooms:
            return
        tombstone = next(
            (
                e
                for e in reversed(events)
                if e.get("type") == "m.room.tombstone" and e.get("state_key") == ""
            ),
            None,
        )
        if tombstone is None:
            return
        new = (tombstone.get("content") or {}).get("replacement_room")
        if not isinstance(new, str) or not new.startswith("!"):
            return
        project = self.rooms.pop(room_id)
        self.replaced[new] = room_id
        log.warning("the Matrix room %s was upgraded to %s; following it", room_id, new)
        joined = await self.client.join(new)
        if not isinstance(joined, JoinResponse):
            log.warning(
                "could not join %s, the new room of %s (%s): invite the bot there",
                new,
                room_id,
                _said(joined),
            )
            return
        await self._serve_replacement(new)
        self.rooms[new] = project

    async def _serve_replacement(self, new: str) -> None:
        old = self.replaced[new]
        if old in self.configured:
            self.configured[new] = self.configured[old]
            await self.bot.store.set_adapter_value(SOURCE, f"room:{new}", UPGRADE_OF + old)
        elif old in self.invited:
            self.invited[new] = self.invited[old]
            await self.bot.store.set_adapter_value(SOURCE, f"room:{new}", self.invited[old])
        self.rooms[new] = self.configured.get(new)

    async def _invited_to(self, room_id: str, invite_state: list[Any]) -> None:
        inviter = next(
            (
                e.sender
                for e in invite_state
                if getattr(e, "state_key", None) == self.settings.user_id
                and getattr(e, "membership", None) == "invite"
            ),
            None,
        )
        # A configured room (invited back after a kick), or the new room of a served one.
        if room_id in self.configured or room_id in self.rooms or room_id in self.replaced:
            joined = await self.client.join(room_id)
            if isinstance(joined, JoinResponse):
                if room_id in self.replaced:
                    await self._serve_replacement(room_id)
                else:
                    self.rooms[room_id] = self.configured.get(room_id, self.rooms.get(room_id))
                log.info("joined %s again, invited by %s", room_id, inviter)
            return
        if inviter is None or not may_invite(self.settings, inviter):
            log.info("declined an invitation to %s from %s", room_id, inviter)
            await self.client.room_leave(room_id)
            return
        joined = await self.client.join(room_id)
        if isinstance(joined, JoinResponse):
            self.rooms[room_id] = None
            self.invited[room_id] = inviter
            await self.bot.store.set_adapter_value(SOURCE, f"room:{room_id}", inviter)
            log.info("joined %s, invited by %s", room_id, inviter)

    async def _keep(self, room_id: str, events: list[dict[str, Any]]) -> int:
        """Keep the room's new command messages in the inbox; how many."""
        if room_id not in self.rooms:
            return 0
        kept = 0
        now_ms = time.time() * 1000
        for event in events:
            if (
                event.get("type") != "m.room.message"
                or event.get("sender") == self.settings.user_id
            ):
                continue
            event_id = event.get("event_id")
            content = event.get("content")
            if not isinstance(event_id, str) or not isinstance(content, dict):
                continue
            if not self._addressed(room_id, event):
                continue
            if self.encrypted(room_id):
                await self._tell_encrypted(room_id)
                continue
            age = now_ms - float(event.get("origin_server_ts") or now_ms)
            self._seq = max(time.time_ns(), self._seq + 1)
            payload = json.dumps(
                {"room_id": room_id, "event": event, "age_ms": age, "seq": self._seq}
            )
            if await self.bot.store.keep_delivery(SOURCE, event_id, "m.room.message", payload):
                kept += 1
        return kept

    def command_text(self, event: dict[str, Any]) -> str:
        """The text of a message the commands are read from; a message that mentions the
        bot may name it without a colon (``taskbot retrigger failed``)."""
        text = command_text(event["content"])
        if text and mentions(event["content"], self.settings.user_id):
            text = addressed(text, self.names())
        return text

    def _addressed(self, room_id: str, event: dict[str, Any]) -> bool:
        """Whether a message holds a line addressed to the bot (cheap: nothing is parsed)."""
        text = self.command_text(event)
        if not text:
            return False
        probe = Request(
            SOURCE, str(event.get("sender")), room_id, text, direct=self.is_direct(room_id)
        )
        return bool(extract_commands(clean(text), self.triggers(probe, self.names())))

    def names(self) -> tuple[str, ...]:
        """What people call the bot here: its name, its user id's localpart, its display name."""
        local = self.settings.user_id[1:].split(":", 1)[0]
        found = [self.bot.settings.name, local]
        if self.display_name:
            found.append(self.display_name)
        return tuple(dict.fromkeys(found))

    # --- rooms -----------------------------------------------------------------------------

    def encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return bool(room is not None and room.encrypted)

    def is_direct(self, room_id: str) -> bool:
        """A room of two (the bot and one person) that is not configured: a direct chat."""
        if room_id in self.configured:
            return False
        room = self.client.rooms.get(room_id)
        return room is not None and room.joined_count == 2

    def power_of(self, room_id: str, user_id: str) -> int:
        """The user's power level in the room; a room's creators, who in rooms of version
        12 on stand above every level, count as ``CREATOR_POWER``."""
        if user_id in self._creators.get(room_id, ()):
            return CREATOR_POWER
        room = self.client.rooms.get(room_id)
        return int(room.power_levels.get_user_level(user_id)) if room is not None else 0

    def _note_creators(self, room_id: str, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("type") != "m.room.create" or event.get("state_key") != "":
                continue
            content = event.get("content") or {}
            version = str(content.get("room_version") or "1")
            if not (version.isdigit() and int(version) >= PRIVILEGED_CREATORS_FROM):
                self._creators.pop(room_id, None)
                continue
            extra = content.get("additional_creators")
            creators = {str(event.get("sender"))}
            if isinstance(extra, list):
                creators.update(str(user) for user in extra)
            self._creators[room_id] = frozenset(creators)

    def project_of(self, room_id: str) -> str | None:
        return self.rooms.get(room_id)

    async def _encryption_noticed(self, room_id: str, events: list[dict[str, Any]]) -> None:
        """Say, when the bot finds itself in an encrypted room (or one turns encryption on),
        that it cannot read it."""
        if room_id not in self.rooms:
            return
        first_look = room_id not in self._looked_at
        self._looked_at.add(room_id)
        turned = any(e.get("type") == "m.room.encryption" for e in events)
        if (first_look and self.encrypted(room_id)) or turned:
            await self._tell_encrypted(room_id)

    async def _tell_encrypted(self, room_id: str) -> None:
        """The notice, at most once an hour in a room, restarts included."""
        store, key = self.bot.store, f"told-encrypted:{room_id}"
        told = await store.adapter_value(SOURCE, key)
        now = time.time()
        if told is not None and now - float(told) < ENCRYPTED_NOTICE_EVERY:
            return
        await store.set_adapter_value(SOURCE, key, str(now))
        try:
            txn = _txn("encrypted", room_id, str(int(now)))
            await self.send(room_id, "m.room.message", message(ENCRYPTED), txn)
        except MatrixSendError as error:
            log.warning("could not tell %s it is encrypted: %s", room_id, error)

    # --- sending ------------------------------------------------------------------------------

    async def send(self, room_id: str, event_type: str, content: dict[str, Any], txn: str) -> str:
        """Send an event; its id. Rate limits are waited out as the homeserver asks; a
        message it still does not take raises ``MatrixSendError``."""
        try:
            async with asyncio.timeout(READY_WAIT):
                await self.ready.wait()
        except TimeoutError:
            raise MatrixSendError("the bot is not logged in to its homeserver") from None
        try:
            sent = await self.client.room_send(room_id, event_type, content, tx_id=txn)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise MatrixSendError(f"the homeserver could not be reached: {error}") from error
        if not isinstance(sent, RoomSendResponse):
            raise MatrixSendError(f"the homeserver refused a message: {_said(sent)}")
        return str(sent.event_id)

    def links(self) -> tuple[str, ...]:
        """Where the bot's replies link to: its Taskcluster deployment and the projects'
        Treeherder."""
        found = [str(self.bot.clients.queue.options.get("rootUrl", "")).rstrip("/") + "/"]
        found += [
            p.treeherder_url.rstrip("/") + "/"
            for p in self.bot.settings.projects.values()
            if p.treeherder_url
        ]
        return tuple(f for f in found if f.startswith(("https://", "http://")))

    def hold(self, room_id: str, user_id: str, lines: list[str]) -> None:
        self._pages[(room_id, user_id)] = lines

    def take_held(self, room_id: str, user_id: str) -> list[str] | None:
        return self._pages.pop((room_id, user_id), None)

    def more_note(self, count: int) -> str:
        return MORE.format(count=count, s="" if count == 1 else "s", name=self.bot.settings.name)

    # --- answering what was kept ----------------------------------------------------------

    async def _work(self) -> None:
        """Answer kept messages when some arrive, and now and then anyway (another replica's,
        once its hold runs out; those to be tried again)."""
        # Only once the rooms' state is in (power levels, members, creators): messages kept
        # before a restart are then answered first, judged as any other.
        await self.synced.wait()
        self._wake.set()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.bot.lease_seconds / 2, 5.0)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.process_pending()
            except Exception:
                log.exception("answering Matrix messages failed; trying again later")

    async def process_pending(self) -> int:
        """Answer every kept message not yet answered; in order within a room, rooms in
        parallel. How many there were."""
        bot = self.bot
        rows = await bot.store.claim_deliveries(SOURCE, bot.instance, lease=bot.lease_seconds)
        gate = asyncio.Semaphore(CONCURRENCY)
        order: dict[str, asyncio.Lock] = {}

        async def handle(row: dict[str, Any], kept: dict[str, Any]) -> None:
            delivery = str(row["delivery_id"])
            if delivery in self._in_progress:
                return
            self._in_progress.add(delivery)
            try:
                room_id = str(kept["room_id"])
                # Held while it waits its turn too: no other replica takes it meanwhile.
                async with (
                    leases.renewed(self._claim(delivery), bot.lease_seconds),
                    order.setdefault(room_id, asyncio.Lock()),  # in turn within a room,
                    gate,  # and a few rooms at a time
                ):
                    await self.answer(room_id, kept["event"], float(kept.get("age_ms", 0)))
                await bot.store.processed(SOURCE, delivery)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._failed(row, error)
            finally:
                self._in_progress.discard(delivery)

        # In the order they were kept (the inbox's clock counts milliseconds, too coarse to
        # order a burst): each room's lock is then taken in that order.
        readable: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for row in rows:
            try:
                kept = json.loads(row["payload"])
                readable.append((int(kept.get("seq", 0)), row, kept))
            except (ValueError, TypeError, AttributeError) as error:
                await self._failed(row, error)
        readable.sort(key=lambda item: item[0])
        await asyncio.gather(*(handle(row, kept) for _, row, kept in readable))
        return len(rows)

    async def _still_there(self, room_id: str, event_id: str) -> dict[str, Any] | None:
        """The event as the homeserver has it now; None when it is gone or redacted.
        The homeserver out of reach raises: the message is tried again later."""
        try:
            found = await self.client.room_get_event(room_id, event_id)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise MatrixSendError(f"the homeserver could not be reached: {error}") from error
        if not isinstance(found, RoomGetEventResponse):
            if _errcode(found) in ("M_NOT_FOUND", "M_FORBIDDEN"):
                return None
            raise MatrixSendError(f"the homeserver did not give the message: {_said(found)}")
        source: dict[str, Any] = found.event.source
        unsigned = source.get("unsigned") or {}
        if unsigned.get("redacted_because") or not source.get("content"):
            return None
        return source

    def _claim(self, delivery: str) -> leases.Claim:
        bot = self.bot
        return lambda: bot.store.renew_delivery(
            SOURCE, delivery, bot.instance, lease=bot.lease_seconds
        )

    async def answer(self, room_id: str, event: dict[str, Any], age_ms: float) -> None:
        """Run the commands of one message (or say why not). The message is read again
        first: one deleted (redacted) while it waited is not run; an edit counts only from
        the author of the message it edits, and is answered where that message was."""
        sender = str(event["sender"])
        event_id = str(event["event_id"])
        if room_id not in self.rooms:
            log.info("Matrix message %s: the bot left %s meanwhile", event_id, room_id)
            return
        current = await self._still_there(room_id, event_id)
        if current is None:
            log.info("Matrix message %s was deleted before it was answered", event_id)
            return
        event = current
        content = event["content"]
        replaces, thread_root = relation_of(content)
        if replaces is not None:
            original = await self._still_there(room_id, replaces)
            if original is None or original.get("sender") != sender:
                log.info("Matrix message %s edits another's (or a deleted) message", event_id)
                return
            _, thread_root = relation_of(original.get("content") or {})
        replier = MatrixReplier(
            self,
            room_id,
            sender,
            reply_to=replaces or event_id,
            thread_root=thread_root,
            cause=event_id,
        )
        if age_ms > self.settings.max_age * 1000:
            await replier.post(STALE.format(minutes=int(age_ms // 60000)))
            return
        direct = self.is_direct(room_id)
        request = Request(
            source=SOURCE,
            actor=sender,
            place=room_id,
            text=self.command_text(event),
            project=self.project_of(room_id),
            delivery_id=event_id,
            direct=direct,
            names=self.names(),
            resumable=True,
            # An edit runs only the commands the message did not hold before.
            message_key=f"{room_id}/{replaces or event_id}",
            origin=MatrixOrigin(
                user_id=sender,
                room_id=room_id,
                event_id=event_id,
                thread_root=thread_root,
                # Power levels are the room's owners' to set: they count in the rooms the
                # operators named, not in a room anyone could make and invite the bot to.
                power=self.power_of(room_id, sender) if room_id in self.configured else None,
            ),
        )
        await self.bot.run(request, replier)

    async def _failed(self, row: dict[str, Any], error: Exception) -> None:
        """A message that could not be answered is tried again later; after its last try it
        is parked for an operator, and the room is told (if it can be)."""
        store, delivery = self.bot.store, str(row["delivery_id"])
        attempt = int(row.get("attempts") or 0) + 1
        retry_in = self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
        why = str(error)[:300] or type(error).__name__
        ERRORS.labels(SOURCE).inc()
        attempts = await store.delivery_failed(
            SOURCE, delivery, self.bot.instance, why, retry_in=retry_in
        )
        if attempts and attempts <= len(self.retry_delays):
            log.warning(
                "Matrix message %s: try %d failed (%s); again in %.0fs",
                delivery,
                attempts,
                why,
                retry_in,
            )
            return
        await store.park_delivery(SOURCE, delivery)
        DELIVERIES_PARKED.labels(SOURCE).inc()
        log.error("Matrix message %s parked after %d tries: %s", delivery, attempts, why)
        with contextlib.suppress(Exception):
            kept = json.loads(row["payload"])
            event = kept["event"]
            replier = MatrixReplier(self, kept["room_id"], event["sender"], event["event_id"])
            await replier.post(PARKED.format(attempts=attempts, why=why))


def _after_own_join(events: list[dict[str, Any]], me: str) -> list[dict[str, Any]]:
    """The events after the bot's own latest join in a room's batch: what came before it was
    said before the bot was there (history a join brings), never a command for it."""
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if (
            event.get("type") == "m.room.member"
            and event.get("state_key") == me
            and (event.get("content") or {}).get("membership") == "join"
            and ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership")
            != "join"
        ):
            return events[index + 1 :]
    return events


def _sent_at(event: dict[str, Any]) -> float:
    """When the sender's homeserver says an event was sent (ms since the epoch)."""
    sent = event.get("origin_server_ts")
    return float(sent) if isinstance(sent, int | float) else 0.0


def _errcode(response: Any) -> str | None:
    return response.status_code if isinstance(response, ErrorResponse) else None


def _said(response: Any) -> str:
    """What an error response said, without anything secret (it never holds the token)."""
    if isinstance(response, ErrorResponse):
        return f"{response.status_code or ''} {response.message or ''}".strip() or "an error"
    return type(response).__name__
