"""The request lifecycle: extract and parse, authorize, run the command, reply, keep track."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot import commands
from bot.graph import GraphCache
from bot.logs import current_request
from bot.metrics import COMMANDS, ERRORS
from bot.request import Replier, Request
from bot.store import RequestRecord, Store
from bot.store.base import LEASE_SECONDS
from bot.tc.clients import Clients
from bot.tc.decision import DecisionReader, ProjectRoutes
from bot.tc.retry import is_transient
from grammar import Limits, Triggers, parse_message

log = logging.getLogger(__name__)
DEFAULT_POLL_INTERVAL = 5.0  # seconds between task-state polls when Pulse is not configured

CRASHED = (
    "Something went wrong on my side while handling `{text}` ({request}); "
    "it is logged. Please try again."
)
DENIED = "You may not `{verb}` here: {reason}"
NO_POLICY = (
    "commands from {source} are not accepted: this deployment has no permission check "
    "for {source} configured."
)
UNAVAILABLE = (
    "Taskcluster did not answer while I handled `{text}` ({error}), even after retries; "
    "nothing new was scheduled. Please try again in a few minutes."
)
DUPLICATE = "already handled"


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """One project: how its pushes are found and how its jobs are scheduled."""

    name: str
    routes: ProjectRoutes = field(default_factory=ProjectRoutes)
    mode: str = "direct"  # or "action": the push's in-tree add-new-jobs hook
    treeherder_url: str | None = None
    repositories: tuple[
        str, ...
    ] = ()  # GitHub repositories (owner/name) whose PRs are this project
    irc_channels: tuple[str, ...] = ()  # IRC channels whose commands mean this project
    permissions: dict[str, str] = field(default_factory=dict)  # verb -> GitHub permission level
    # GitHub teams ("org/team-slug") whose members may run these verbs whatever their
    # permission on the repository (sheriffs retriggering on any project's pull requests).
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_new_tasks: int | None = None  # overrides the bot-wide caps for this project
    confirm_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The lifecycle's limits and defaults."""

    name: str = "taskbot"
    limits: Limits = field(default_factory=Limits)
    max_new_tasks: int = 500
    confirm_threshold: int = 50
    confirm_minutes: int = 30
    shortlist_limit: int = 50
    default_project: str = "autoland"
    projects: dict[str, ProjectSettings] = field(default_factory=dict)
    amqp_url: str | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL

    def project(self, name: str | None) -> ProjectSettings:
        name = name or self.default_project
        return self.projects.get(name) or ProjectSettings(name)


def default_instance(env: Mapping[str, str]) -> str:
    """This replica's name: TASKBOT_INSTANCE, Heroku's DYNO (web.1), or the host name. A
    restarted replica keeps its name, so it takes back its own requests at once."""
    return env.get("TASKBOT_INSTANCE") or env.get("DYNO") or socket.gethostname()


Policy = Callable[[Request, str], Awaitable[str | None]]
ReplierFactory = Callable[[RequestRecord], Awaitable[Replier | None]]
# The full revision a short one names where the request came from (a repository's commit).
RevisionLookup = Callable[[Request, str], Awaitable[str | None]]


async def allow_all(request: Request, verb: str) -> str | None:
    """The console's policy: the person at the terminal may do anything."""
    return None


def console_only() -> dict[str, Policy]:
    """The default: the console may do anything; every other source is refused until an
    adapter installs its own check (GitHub permissions, IRC accounts)."""
    return {"console": allow_all}


@dataclass
class Context:
    """What a command needs: the request, where to reply, and the bot's services."""

    bot: Bot
    request: Request
    replier: Replier
    line: str
    position: int = 0  # which command of the message (request ids derive from it)

    async def reply(self, text: str) -> str:
        return await self.replier.post(text)


@dataclass
class Bot:
    """Everything a command may use, passed in: settings, store, Taskcluster, and the
    permission check of each source (``request.source`` -> policy)."""

    settings: Settings
    store: Store
    clients: Clients
    policies: dict[str, Policy] = field(default_factory=console_only)
    decisions: DecisionReader = field(init=False)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # This process among the replicas sharing the store, and how long its holds last.
    instance: str = field(default_factory=lambda: default_instance(os.environ))
    lease_seconds: float = LEASE_SECONDS
    # How to answer again, after a restart, where a request came from (source -> factory);
    # without one, resumed requests report to the default replier.
    repliers: dict[str, ReplierFactory] = field(default_factory=dict)
    revision_lookups: dict[str, RevisionLookup] = field(default_factory=dict)
    following: set[str] = field(default_factory=set)  # requests this process tracks now
    submitting: set[str] = field(default_factory=set)  # and those it is submitting now

    def __post_init__(self) -> None:
        self.commands = commands.load()
        self.decisions = DecisionReader(
            self.clients.index, self.clients.queue, self.clients.session, GraphCache()
        )

    async def authorize(self, request: Request, verb: str) -> str | None:
        """None when ``request.actor`` may run ``verb``; otherwise why not."""
        policy = self.policies.get(request.source)
        if policy is None:
            return NO_POLICY.format(source=request.source)
        return await policy(request, verb)

    def triggers(self, request: Request) -> Triggers:
        names = (self.settings.name, *request.names)
        if request.source == "github":
            # direct: a click on a check run's button, said to the bot without a mention
            return Triggers(
                names=names, mention=True, slash=True, markdown=True, direct=request.direct
            )
        if request.source == "irc":
            return Triggers(names=names, address=True, bang=True, direct=request.direct)
        return Triggers(names=names, mention=True, address=True, slash=True, bang=True, direct=True)

    async def request_id_for(self, ctx: Context) -> str:
        """A new id; for a delivery, one derived from it, so a retry after a crash finds the
        request the first attempt made instead of making another."""
        request = ctx.request
        if request.delivery_id is None:
            return await self.new_request_id()
        return derived_request_id(request.source, request.delivery_id, ctx.position)

    async def new_request_id(self) -> str:
        while True:
            candidate = "r" + secrets.token_hex(3)
            if await self.store.request(candidate) is None:
                return candidate

    async def stop(self, grace: float = 5.0) -> None:
        """Stop background work (submissions, tracking): what it did is in the store, and
        the next start (or another replica) carries on from there."""
        tasks = list(self.background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def idle(self, timeout: float) -> bool:
        """Wait until background work (submissions, tracking) is done; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.background:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self.background), timeout=remaining)
        return True

    async def resume(self, replier: Replier) -> list[str]:
        """Requests a crash caught mid-submit are submitted again (same taskIds: the Queue
        answers 200 for what already exists) and followed; those submitted are followed.
        Only requests no live replica holds are taken, and each by one replica only."""
        from bot.reporting import track
        from bot.scheduling import submit_request

        resumed = []
        for state in ("submitting", "submitted"):
            for record in await self.store.requests_in(state):
                if record.id in resumed or record.id in self.following | self.submitting:
                    continue  # already in hand here: its hold is being renewed
                if not await self.store.claim_request(
                    record.id, self.instance, lease=self.lease_seconds
                ):
                    continue
                resumed.append(record.id)
                answer = await self._replier_for(record, replier)
                if state == "submitting":
                    await submit_request(self, answer, record.id, resumed=True)
                else:
                    self.spawn(track(self, answer, record.id))
        return resumed

    async def _replier_for(self, record: RequestRecord, default: Replier) -> Replier:
        factory = self.repliers.get(record.source)
        if factory is None:
            return default
        try:
            return await factory(record) or default
        except Exception:
            log.exception("cannot answer %s where it came from; reporting here", record.id)
            return default

    async def keep_resuming(self, replier: Replier, every: float | None = None) -> None:
        """Take over, now and then, what a replica that died left behind (its holds ran
        out); runs until cancelled."""
        while True:
            await asyncio.sleep(every or self.lease_seconds / 2)
            try:
                taken = await self.resume(replier)
            except Exception:
                log.exception("resuming requests failed; trying again later")
                continue
            if taken:
                log.info("took over %s", ", ".join(taken))

    async def handle(self, request: Request, replier: Replier) -> int:
        """Answer every command in the request; how many commands it held."""
        if request.delivery_id and not await self.store.first_delivery(
            request.source, request.delivery_id
        ):
            if not request.resumable:
                log.info("delivery %s from %s %s", request.delivery_id, request.source, DUPLICATE)
                return 0
            log.warning(
                "handling delivery %s again (an earlier attempt stopped)", request.delivery_id
            )
        parsed = parse_message(request.text, self.triggers(request), limits=self.settings.limits)
        if not parsed:
            return 0
        await replier.react("eyes")
        troubled = False
        for position, item in enumerate(parsed):
            if item.error is not None:
                troubled = True
                COMMANDS.labels(request.source, "?", "parse_error").inc()
                await replier.post(item.error.render())
                continue
            assert item.command is not None
            verb = item.command.verb
            reason = await self.authorize(request, verb)
            if reason is not None:
                await self.store.audit(
                    actor=request.actor,
                    source=request.source,
                    place=request.place,
                    action="denied",
                    detail={"verb": verb, "why": reason},
                )
                troubled = True
                COMMANDS.labels(request.source, verb, "denied").inc()
                await replier.post(DENIED.format(verb=verb, reason=reason))
                continue
            ctx = Context(self, request, replier, item.where.body, position)
            token = current_request.set(request.delivery_id or f"{request.source}:{request.actor}")
            try:
                await self.commands[verb].handler(ctx, item.command)
                COMMANDS.labels(request.source, verb, "ok").inc()
            except Exception as error:
                troubled = True
                request.failed.append(item.where.body)
                if is_transient(error):
                    COMMANDS.labels(request.source, verb, "unavailable").inc()
                    ERRORS.labels("taskcluster").inc()
                    log.warning("Taskcluster unavailable for %r: %s", item.where.body, error)
                    await replier.post(
                        UNAVAILABLE.format(text=item.where.body, error=_short(error))
                    )
                    continue
                COMMANDS.labels(request.source, verb, "error").inc()
                reference = secrets.token_hex(4)
                log.exception("command %r failed (reference %s)", item.where.body, reference)
                await replier.post(
                    CRASHED.format(text=item.where.body, request=f"reference {reference}")
                )
            finally:
                current_request.reset(token)
        await replier.react("confused" if troubled else "rocket")
        return len(parsed)


def derived_request_id(source: str, delivery_id: str, position: int) -> str:
    """The id of the request made by the command at ``position`` of a delivery: the same
    on every attempt, so a retry finds what the first attempt made."""
    key = f"{source}\0{delivery_id}\0{position}"
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:10]


def _short(error: BaseException) -> str:
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return f"HTTP {status}" if status else type(error).__name__
