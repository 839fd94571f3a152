"""The IRC connection: IRCv3 capabilities and SASL, channels, commands in, paced replies out,
and reconnection with backoff, all on the bot's event loop (``irc.client_aio``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from irc.client import ServerConnectionError
from irc.client_aio import AioConnection, AioReactor
from irc.connection import AioFactory
from irc.strings import lower as irc_lower
from jaraco.stream.buffer import DecodingLineBuffer

from bot.adapters.irc.accounts import (
    Accounts,
    IrcOrigin,
    account_level,
    no_account,
    refusal,
)
from bot.adapters.irc.lines import plain, relayed_budget, wrap
from bot.adapters.irc.outbox import Line, Outbox, TokenBucket
from bot.adapters.irc.settings import IrcSettings
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.backoff import Backoff
from bot.core.request import Request
from bot.core.settings import ProjectSettings
from bot.metrics import ERRORS
from bot.service import Bot
from bot.store import RequestRecord
from grammar import Triggers, extract_commands

log = logging.getLogger(__name__)
SOURCE = "irc"
WANTED_CAPS = ("account-tag", "extended-join", "account-notify", "message-tags", "multi-prefix")
REGISTRATION_TIMEOUT = 60.0
STABLE_AFTER = 60.0  # a connection that lasted this long resets the backoff
MORE = "… {count} more line{s}: say `{name}: more`."
COMMANDS_QUEUE = "\0commands"  # the outbox queue of the bot's own commands
# A client line this long (of IRC's 512 bytes with CR LF) may have been cut by the client
# or the server: it is never run as it came.
CUT_AT = 500
RELAYED_CUT_AT = 508  # of 512 with CR LF: a relayed line this long was cut by the server
CONTINUATION_SECONDS = 1.0
CUT = (
    "That line reached IRC's length limit ({limit} bytes), so its end may have been cut off: "
    "I did not run it. Shorten it, or split it into several commands."
)
NOT_LOGGED_IN = (
    "I am not logged in to my services account ({account}) yet, so I do not run `{verb}` or "
    "any command that changes things; try again in a minute."
)
# Progress lines of a request ("[r7f3a] 3/12 done: 3 ok"): only the newest unsent one matters.
PROGRESS = re.compile(r"^\[(r[0-9a-f]+)\] \d+/\d+ done: [^:]*$")


class _ReplacingLineBuffer(DecodingLineBuffer):  # type: ignore[misc]
    """UTF-8, with what is not (a line cut inside a character) as replacement characters."""

    errors = "replace"


class _Connection(AioConnection):  # type: ignore[misc]
    """jaraco's connection, decoding invalid UTF-8 as replacement characters, never as
    Latin-1 mojibake."""

    buffer_class = _ReplacingLineBuffer


@dataclass
class IrcReplier:
    """Replies to one person in one place: lines addressed to them, paced, long ones paged."""

    adapter: IrcAdapter
    target: str
    nick: str
    _numbers: Any = field(default_factory=lambda: itertools.count(1))

    async def post(self, text: str) -> str:
        self.adapter.say(self.target, self.nick, text)
        return f"{self.target}/{next(self._numbers)}"

    async def react(self, reaction: str) -> None:
        return None

    async def more(self) -> bool:
        """Send the next page of a long reply; False when nothing is held."""
        return self.adapter.next_page(self.target, self.nick)

    async def notify(self, actor: str, text: str) -> None:
        """A private message: it reaches the person wherever they are on the network."""
        self.adapter.say(self.nick, self.nick, text)


class IrcAdapter(Adapter):
    """One connection to one IRC network, kept up for as long as the bot runs; who may do
    what goes by services account."""

    source = SOURCE

    def __init__(self, bot: Bot, settings: IrcSettings) -> None:
        self.bot = bot
        self.settings = settings
        self.accounts = Accounts()
        self.outbox = Outbox(TokenBucket(settings.burst, settings.lines_per_second))
        self.ready = asyncio.Event()  # registered and channels joined: lines may go
        self.wanted_caps: tuple[str, ...] = WANTED_CAPS
        self.caps: set[str] = set()
        self.mask: str | None = None  # nick!user@host as others see the bot
        self.account: str | None = None  # the services account it is logged in as
        self.whox = False
        self.connections = 0
        self._pages: dict[tuple[str, str], list[str]] = {}
        self._offered: set[str] = set()
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reactor: AioReactor | None = None
        self._connection: _Connection | None = None
        self._stopping = asyncio.Event()
        # When each person's last line reached the length limit (place, nick): what they
        # say in the next second is the rest of it.
        self._cut: dict[tuple[str, str], float] = {}
        bot.register(self)

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        """``taskbot: verb`` or ``!verb`` in a channel; every line of a private message."""
        return Triggers(names=names, address=True, bang=True, direct=request.direct)

    def logged_out(self) -> bool:
        """Whether the bot should be logged in to its services account and is not."""
        return self.settings.sasl_required and self.account is None

    async def level_of(self, request: Request) -> Level:
        origin = request.origin
        if not isinstance(origin, IrcOrigin):
            return Level.NONE
        level = account_level(self.settings.accounts, origin)
        # Not logged in itself, the bot cannot trust what the network says of accounts.
        return min(level, Level.TRIAGE) if self.logged_out() else level

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        if self.logged_out():
            return NOT_LOGGED_IN.format(account=self.settings.sasl_username, verb=verb)
        origin = request.origin
        if not isinstance(origin, IrcOrigin):
            origin = IrcOrigin(nick=request.actor, accounts_known=False)
        return refusal(self.settings.accounts, origin, verb, need)

    def shared(self, request: Request) -> bool:
        """A channel: `status` there lists the channel's requests."""
        return not request.direct

    def private(self, record: RequestRecord) -> bool:
        """A request asked for in a private message (its place is a nick, not a channel)."""
        return not record.place.startswith(("#", "&"))

    async def replier_for(self, record: RequestRecord) -> IrcReplier | None:
        """Where a request taken up again after a restart reports: the channel it was asked
        in (addressed to who asked) or the private chat; sent once the bot is back in."""
        if not record.place:
            return None
        return IrcReplier(self, record.place, record.actor)

    # --- life cycle ----------------------------------------------------------------------

    def install(self, app: Any) -> None:
        """Run alongside the HTTP server (aiohttp's start-up and clean-up hooks)."""
        app.on_startup.append(lambda _app: self.start())
        app.on_cleanup.append(lambda _app: self.stop())

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._stay_connected()),
            asyncio.create_task(self.outbox.run(self._send, self.ready)),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        if self._connection is not None and self._connection.is_connected():
            with contextlib.suppress(Exception):
                self._connection.disconnect("taskbot stopping")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _stay_connected(self) -> None:
        """Connect; when the connection ends, wait (exponential backoff with jitter), then
        connect again. What was queued meanwhile is sent once the channels are joined."""
        backoff = Backoff(self.settings.reconnect_base, self.settings.reconnect_cap, STABLE_AFTER)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            self._closed.clear()
            try:
                await self._connect()
                try:
                    await asyncio.wait_for(self._registered(), REGISTRATION_TIMEOUT)
                except TimeoutError:
                    log.warning(
                        "IRC registration took over %ss; reconnecting", REGISTRATION_TIMEOUT
                    )
                    self._hang_up("registration timed out")
                await self._closed.wait()
            except (OSError, ServerConnectionError) as error:
                ERRORS.labels("irc").inc()
                log.warning("IRC connection to %s failed: %s", self.settings.server, error)
            self.ready.clear()
            if self._stopping.is_set():
                return
            delay = backoff.delay(loop.time() - started)
            log.info("reconnecting to IRC in %.1fs", delay)
            await asyncio.sleep(delay)

    async def _registered(self) -> None:
        await self.ready.wait()

    async def _connect(self) -> None:
        settings = self.settings
        self._reactor = AioReactor(loop=asyncio.get_running_loop(), on_connect=self._on_connect)
        connection = _Connection(self._reactor)
        self._reactor.connections.append(connection)
        self._connection = connection
        for event, handler in self._handlers().items():
            connection.add_global_handler(event, handler)
        context: ssl.SSLContext | bool = False
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.tls_ca_file)
            if not settings.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        factory = AioFactory(ssl=context) if settings.tls else AioFactory()
        self.outbox.drop_commands()  # a new connection starts its own
        self.caps.clear()
        self.account = None
        self._offered.clear()
        self.accounts.clear()
        self.whox = False
        await connection.connect(
            settings.server,
            settings.port,
            settings.nick,
            password=settings.server_password,
            username=settings.nick,
            ircname="taskbot: schedules Taskcluster jobs",
            connect_factory=factory,
        )
        self.connections += 1

    def _command(self, connection: _Connection, line: str) -> None:
        """A line of the bot's own (CAP, SASL, WHO, JOIN): during registration at once; once
        registered, paced with the replies (the server counts every line alike), in order."""
        if not self.ready.is_set():
            connection.send_raw(line)
            return
        self.outbox.put(Line("", line, to=COMMANDS_QUEUE, raw=True))

    def _on_connect(self, protocol: Any, transport: asyncio.Transport) -> None:
        # Before NICK and USER: the server holds registration until CAP END.
        transport.write(b"CAP LS 302\r\n")

    def _hang_up(self, why: str) -> None:
        if self._connection is not None and self._connection.is_connected():
            with contextlib.suppress(Exception):
                self._connection.disconnect(why)
        self._closed.set()

    def _handlers(self) -> dict[str, Any]:
        return {
            "cap": self._on_cap,
            "authenticate": self._on_authenticate,
            "saslsuccess": self._sasl_done,
            "loggedin": self._on_logged_in,
            "saslfail": self._sasl_failed,
            "sasltoolong": self._sasl_failed,
            "saslaborted": self._sasl_failed,
            "saslalready": self._sasl_done,
            "welcome": self._on_welcome,
            "featurelist": self._on_features,
            "nicknameinuse": self._on_nick_taken,
            "nickcollision": self._on_nick_taken,
            "unavailresource": self._on_nick_taken,
            "join": self._on_join,
            "account": self._on_account,
            "whospcrpl": self._on_whox,
            "nick": self._on_nick,
            "quit": self._on_quit,
            "kick": self._on_kick,
            "pubmsg": self._on_message,
            "privmsg": self._on_message,
            "error": self._on_error,
            "disconnect": self._on_disconnect,
        }

    # --- registration: capabilities, SASL, nick ---------------------------------------------

    def _on_cap(self, connection: _Connection, event: Any) -> None:
        sub, args = event.arguments[0].upper(), event.arguments[1:]
        if sub == "LS":
            more = len(args) > 1 and args[0] == "*"
            offered = args[-1] if args else ""
            self._offered.update(c.split("=", 1)[0] for c in offered.split())
            if more:
                return
            wanted = [c for c in self.wanted_caps if c in self._offered]
            if self.settings.sasl_username and "sasl" in self._offered:
                wanted.append("sasl")
            if wanted:
                self._command(connection, "CAP REQ :" + " ".join(wanted))
            else:
                self._command(connection, "CAP END")
        elif sub == "ACK":
            self.caps.update(args[-1].split())
            if "sasl" in self.caps and self.settings.sasl_username:
                self._command(connection, "AUTHENTICATE PLAIN")
            else:
                self._command(connection, "CAP END")
        elif sub == "NAK":
            log.warning("IRC server refused capabilities: %s", args[-1] if args else "")
            self._command(connection, "CAP END")
        elif sub == "NEW" and args:
            new = [c.split("=", 1)[0] for c in args[-1].split()]
            wanted = [c for c in new if c in self.wanted_caps]
            if "sasl" in new and self.settings.sasl_username and self.account is None:
                wanted.append("sasl")  # services are back: log in now, not at a reconnect
            if wanted:
                self._command(connection, "CAP REQ :" + " ".join(wanted))
        elif sub == "DEL" and args:
            self.caps.difference_update(args[-1].split())

    def _on_authenticate(self, connection: _Connection, event: Any) -> None:
        if event.target != "+":
            return
        user, password = self.settings.sasl_username or "", self.settings.sasl_password or ""
        payload = base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode()
        chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)] or ["+"]
        if len(chunks[-1]) == 400:
            chunks.append("+")
        for chunk in chunks:
            self._command(connection, f"AUTHENTICATE {chunk}")

    def _sasl_done(self, connection: _Connection, event: Any) -> None:
        if not self.ready.is_set():  # after registration (CAP NEW sasl) there is nothing to end
            self._command(connection, "CAP END")

    def _on_logged_in(self, connection: _Connection, event: Any) -> None:
        # RPL_LOGGEDIN: <nick> <nick!user@host> <account> :You are now logged in as ...
        if len(event.arguments) >= 2:
            self.account = str(event.arguments[1])

    def _sasl_failed(self, connection: _Connection, event: Any) -> None:
        log.error("SASL login as %s failed: %s", self.settings.sasl_username, event.arguments)
        self._command(connection, "CAP END")

    def _on_nick_taken(self, connection: _Connection, event: Any) -> None:
        if self.ready.is_set():
            return
        current = connection.get_nickname() or self.settings.nick
        connection.nick(current + "_" if len(current) < 28 else current[:-1] + "_")

    def _on_welcome(self, connection: _Connection, event: Any) -> None:
        self.mask = None
        # Registration (CAP, SASL, NICK, USER) used the server's allowance; each JOIN, and
        # the WHO after it, counts like a message: queued replies wait their turn after them.
        self.outbox.bucket.empty()
        channels = self.channels()
        for channel in channels:
            connection.join(channel)
        self.outbox.bucket.spend(len(channels))
        if self.settings.sasl_username and self.account is None:
            log.warning(
                "on IRC without the services account %s (services not linked yet?): "
                "logging in when the server offers SASL again; write commands wait for it",
                self.settings.sasl_username,
            )
        self.ready.set()
        log.info("on IRC as %s; joining %s", connection.get_nickname(), ", ".join(self.channels()))

    def _on_features(self, connection: _Connection, event: Any) -> None:
        self.whox = self.whox or any(a.upper() == "WHOX" for a in event.arguments)

    def channels(self) -> list[str]:
        """IRC_CHANNELS and every project's ``irc_channels``."""
        found = list(self.settings.channels)
        for project in self.bot.settings.projects.values():
            found += [c for c in project.irc_channels if c not in found]
        return found

    # --- who is who ----------------------------------------------------------------------

    def _is_me(self, connection: _Connection, nick: str) -> bool:
        return bool(irc_lower(nick) == irc_lower(connection.get_nickname() or ""))

    def _on_join(self, connection: _Connection, event: Any) -> None:
        nick = event.source.nick
        if self._is_me(connection, nick):
            self.mask = str(event.source)
            if self.whox and "account-tag" not in self.caps:
                # Who is logged in, before anyone's command needs it: at once, counted.
                connection.send_raw(f"WHO {event.target} %tna,170")
                self.outbox.bucket.spend(1)
            return
        if "extended-join" in self.caps and event.arguments:
            self.accounts.seen(nick, event.arguments[0])

    def _on_account(self, connection: _Connection, event: Any) -> None:
        self.accounts.seen(event.source.nick, event.target)

    def _on_whox(self, connection: _Connection, event: Any) -> None:
        if len(event.arguments) >= 3 and event.arguments[0] == "170":
            self.accounts.seen(event.arguments[1], event.arguments[2])

    def _on_nick(self, connection: _Connection, event: Any) -> None:
        self.accounts.renamed(event.source.nick, event.target)

    def _on_quit(self, connection: _Connection, event: Any) -> None:
        self.accounts.gone(event.source.nick)

    def _on_kick(self, connection: _Connection, event: Any) -> None:
        if event.arguments and self._is_me(connection, event.arguments[0]):
            channel = event.target
            log.warning("kicked from %s; rejoining", channel)
            asyncio.get_running_loop().call_later(5.0, self._rejoin, channel)

    def _rejoin(self, channel: str) -> None:
        if self._connection is not None and self._connection.is_connected():
            self._command(self._connection, f"JOIN {channel}")

    def account_of(self, nick: str, tags: Mapping[str, str | None]) -> tuple[str | None, bool]:
        """(account, known): the message's own account tag when the server sends them;
        else what JOIN/ACCOUNT/WHOX said of the nick; known is False when nothing tells."""
        if "account-tag" in self.caps:
            value = tags.get("account")
            return (None if no_account(value) else value), True
        if self.accounts.known(nick):
            return self.accounts.account(nick), True
        return None, False

    # --- commands in -----------------------------------------------------------------------

    def _on_message(self, connection: _Connection, event: Any) -> None:
        nick = event.source.nick
        if self._is_me(connection, nick) or not event.arguments:
            return
        raw = str(event.arguments[0])
        text = plain(raw)
        direct = event.type == "privmsg"
        if not self.settings.bang_commands and not direct and text.lstrip().startswith("!"):
            return
        tags = {t["key"]: t.get("value") for t in (event.tags or [])}
        account, known = self.account_of(nick, tags)
        place = nick if direct else str(event.target)
        loop = asyncio.get_running_loop()
        speaker = (irc_lower(place), irc_lower(nick))
        if loop.time() - self._cut.get(speaker, -60.0) < CONTINUATION_SECONDS:
            return  # the rest of a line the person's client split: never a command alone
        self._cut.pop(speaker, None)
        # As the person's client sent it, and as the server relayed it (with the sender's
        # prefix): either at the limit means the end may be gone.
        client_line = len(f"PRIVMSG {event.target} :".encode()) + len(raw.encode())
        relayed = len(f":{event.source} ".encode()) + client_line
        if client_line >= CUT_AT or relayed >= RELAYED_CUT_AT:
            log.info(
                "IRC line of %d bytes (%d relayed) from %s: not run", client_line, relayed, nick
            )
            now = loop.time()  # only lines cut within the last second matter: forget the rest
            self._cut = {k: t for k, t in self._cut.items() if now - t < CONTINUATION_SECONDS}
            self._cut[speaker] = now
            names = (self.bot.settings.name, connection.get_nickname())
            probe = Request(SOURCE, nick, place, text, direct=direct)
            if extract_commands(text, self.triggers(probe, names)):
                self.say(place, nick, CUT.format(limit=CUT_AT))
            return
        request = Request(
            source=SOURCE,
            actor=account or nick,
            place=place,
            text=text,
            project=self._project_of(place),
            delivery_id=tags.get("msgid") or None,
            direct=direct,
            names=(connection.get_nickname(),),
            origin=IrcOrigin(nick, account, known, "" if direct else place),
        )
        self.bot.spawn(self.bot.handle(request, IrcReplier(self, place, nick)))

    def _project_of(self, place: str) -> str | None:
        projects: Mapping[str, ProjectSettings] = self.bot.settings.projects
        folded = irc_lower(place)
        return next(
            (p.name for p in projects.values() if folded in map(irc_lower, p.irc_channels)), None
        )

    # --- replies out -----------------------------------------------------------------------

    def say(self, target: str, nick: str, text: str) -> None:
        """Queue ``text`` for ``nick`` at ``target``: wrapped to fit, the first
        ``page_lines`` lines now and the rest held for `more`."""
        me = self._connection.get_nickname() if self._connection else None
        lead = "" if irc_lower(target) == irc_lower(nick) else f"{nick}: "
        budget = relayed_budget(self.mask, me or self.settings.nick, target)
        lines = wrap(text, budget, lead=lead)
        key = None
        found = PROGRESS.match(text)
        if found and len(lines) == 1:
            key = f"progress:{found[1]}"
        page = self.settings.page_lines
        if len(lines) > page:
            held = lines[page - 1 :]
            lines = lines[: page - 1]
            self._pages[(irc_lower(target), irc_lower(nick))] = held
            lines.append(lead + self._more_note(len(held)))
        for line in lines:
            self.outbox.put(Line(target, line, key, to=irc_lower(nick)))

    def _more_note(self, count: int) -> str:
        return MORE.format(count=count, s="" if count == 1 else "s", name=self.settings.nick)

    def next_page(self, target: str, nick: str) -> bool:
        held = self._pages.pop((irc_lower(target), irc_lower(nick)), None)
        if not held:
            return False
        page = self.settings.page_lines
        lead = "" if irc_lower(target) == irc_lower(nick) else f"{nick}: "
        now, rest = (held, []) if len(held) <= page else (held[: page - 1], held[page - 1 :])
        if rest:
            self._pages[(irc_lower(target), irc_lower(nick))] = rest
            now = [*now, lead + self._more_note(len(rest))]
        for line in now:
            self.outbox.put(Line(target, line, to=irc_lower(nick)))
        return True

    def _send(self, line: Line) -> bool:
        connection = self._connection
        if connection is None or not connection.is_connected():
            return False
        try:
            if line.raw:
                connection.send_raw(line.text)
            else:
                connection.privmsg(line.target, line.text)
        except (ServerConnectionError, OSError) as error:
            log.warning("could not send to %s: %s", line.target, error)
            return False
        return True

    # --- the end of a connection -----------------------------------------------------------

    def _on_error(self, connection: _Connection, event: Any) -> None:
        log.warning("IRC server closed the link: %s", event.target)

    def _on_disconnect(self, connection: _Connection, event: Any) -> None:
        if connection is self._connection:
            self.ready.clear()
            self._closed.set()
