"""The request lifecycle: recognise and parse commands, authorize them from the command table,
run them, reply, and carry on after a restart what was left half done."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bot.action_mode import follow_action
from bot.bisecting import Silent, is_round, run_search
from bot.commands import COMMANDS
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.commands import Command, CommandTable, Context
from bot.core.limits import MessageBudget, RateLimit
from bot.core.replies import Replier
from bot.core.request import Outcome, Request, command_keys
from bot.core.runtime import Runtime
from bot.logs import FIELDS, current_request
from bot.metrics import COMMANDS as COMMAND_COUNT
from bot.metrics import ERRORS
from bot.reporting import track
from bot.store import RequestRecord, RequestState
from bot.store.base import now_text
from bot.submission import submit_request
from bot.tc.retry import is_transient
from grammar import (
    AnyCommand,
    CommandLine,
    Parsed,
    Revision,
    extract_commands,
    parse_line,
    verb_of,
)

log = logging.getLogger(__name__)

CRASHED = (
    "Something went wrong on my side while handling `{text}` ({request}); "
    "it is logged. Please try again."
)
DENIED = "You may not `{verb}` here: {reason}"
NO_ADAPTER = (
    "commands from {source} are not accepted: this deployment has no permission check "
    "for {source} configured."
)
NOT_HERE = "`{verb}` is not a command here; `help` lists the ones that are."
UNAVAILABLE = (
    "Taskcluster did not answer while I handled `{text}` ({error}), even after retries; "
    "{outcome}. Please try again in a few minutes."
)
# What an outage mid-command leaves, by verb: scheduling ones create nothing before all
# their reads and checks are done; a cancel may have got partway.
OUTAGE_LEFT = {
    "cancel": "it may have been done in part only (`status` says where it stands)",
    "rerun": "some of its tasks may have been rerun already (`push` says where they stand)",
}
NOTHING_SCHEDULED = "nothing new was scheduled"
DUPLICATE = "already handled"
LONG_LINE = 2000  # characters: a longer command line has its verb checked before it is parsed
MAX_MESSAGE = 300_000  # characters of a message looked at (GitHub's comments hold 65,536)
MESSAGE_TOO_LONG = (
    "That message is {count:,} characters long; I read messages of at most {limit:,}, so I "
    "did not look for commands in it."
)
ELSEWHERE = (
    "this place is for {home}, and {target} does not take `{verb}` from {home}'s places (its "
    "operators can list {home} in its `allow_from`)."
)
PRUNE_EVERY = 3600.0  # seconds between two prunings of old deliveries
TOO_MANY_COMMANDS = (
    "Only the first {limit} commands of a message are run; the other {rest} were not: send "
    "them again in another message."
)
TOO_FAST = (
    "You sent more than {limit} commands in a minute, so the rest of this message was not "
    "run: wait a minute, then send it again."
)


INTERRUPTED = (
    "[{request}] I was stopped while triggering the push's action, so I cannot tell whether "
    "it ran: look for an `Action:` task in {group} before asking again."
)


@dataclass
class Bot(Runtime):
    """The runtime with the command table and the dispatcher that uses it."""

    commands: CommandTable = field(default_factory=lambda: COMMANDS)
    rates: RateLimit = field(default_factory=RateLimit)

    def __post_init__(self) -> None:
        Runtime.__post_init__(self)
        missing = self.commands.missing()
        if missing:
            raise RuntimeError(f"no command implements: {', '.join(missing)}")

    async def authorize(
        self,
        adapter: Adapter,
        request: Request,
        command: Command,
        on: Revision | None = None,
        at_least: Level = Level.NONE,
    ) -> str | None:
        """None when ``request.actor`` may run ``command`` here; otherwise why not.

        The rules are those of the project the command acts on (the project of its ``on``
        push, else the place's): the level it needs comes from the command table or that
        project's `permissions`; the adapter says what level the person has. A place that
        means one project changes nothing in another unless that one allows it. The fork
        gate judges the push the command runs: the ``on`` one, else the place's."""
        target = (on.project if on else None) or request.project or self.settings.default_project
        project = self.settings.project(target)
        scoped = replace(request, project=target)

        def need(verb: str) -> Level:
            known = self.commands.get(verb)
            return project.need(verb, known.level if known else Level.ADMIN)

        needed = max(need(command.verb), at_least)  # at_least: what this use of it asks
        home = request.project
        elsewhere = home is not None and not project.admits(home)
        if needed > Level.TRIAGE and elsewhere:
            return ELSEWHERE.format(verb=command.verb, home=home, target=target)
        have = await adapter.level_of(scoped)
        if have < needed and not await adapter.grants(scoped, command.verb):
            return await adapter.refusal(scoped, command.verb, needed, have)
        if command.gated:
            judged = replace(scoped, revision=on.node) if on is not None and on.node else scoped
            return await adapter.untrusted(judged, command.verb, have, need)
        return None

    async def resume(self, replier: Replier) -> list[str]:
        """Requests a crash caught mid-submit are submitted again (same taskIds: the Queue
        answers 200 for what already exists) and followed; those submitted are followed.
        Only requests no live replica holds are taken, and each by one replica only."""
        resumed = []
        for state in (
            RequestState.SUBMITTING,
            RequestState.SUBMITTED,
            RequestState.ACTION_RUNNING,
            RequestState.TRIGGERING,
            RequestState.SEARCHING,
        ):
            for record in await self.store.requests_in(state):
                if record.id in resumed or record.id in self.following | set(self.submitting):
                    continue  # already in hand here: its hold is being renewed
                if state == RequestState.TRIGGERING and record.updated_at > now_text(
                    -self.lease_seconds
                ):
                    continue  # being triggered now, maybe here: only a stale one was cut off
                if not await self.claim(record.id):
                    continue
                resumed.append(record.id)
                answer = await self._replier_for(record, replier)
                if state == RequestState.SUBMITTING:
                    await submit_request(self, answer, record.id, resumed=True)
                elif state == RequestState.ACTION_RUNNING:
                    self.spawn(follow_action(self, answer, record.id))
                elif state == RequestState.TRIGGERING:
                    await self._interrupted_trigger(answer, record)
                elif state == RequestState.SEARCHING:
                    self.spawn(run_search(self, answer, record.id))
                else:
                    self.spawn(track(self, answer, record.id))
        return resumed

    async def _interrupted_trigger(self, replier: Replier, record: RequestRecord) -> None:
        """A replica died while it triggered a push's action: whether the hook fired cannot
        be told (a hook run has no key to ask by), so it is never triggered again; the
        request fails, saying where to look."""
        group = record.decision_task_id or ""
        root = self.clients.queue.options["rootUrl"]
        said = INTERRUPTED.format(request=record.id, group=f"{root}/tasks/groups/{group}")
        await self.store.replace_plan(record.id, [], state=RequestState.FAILED, error=said)
        try:
            await replier.post(said)
        except Exception as error:
            log.warning("could not say %s was interrupted: %s", record.id, error)

    async def _replier_for(self, record: RequestRecord, default: Replier) -> Replier:
        if is_round(record):  # a culprit search's round: its search reports it
            return Silent()
        adapter = self.adapter(record.source)
        if adapter is None:
            return default
        try:
            return await adapter.replier_for(record) or default
        except Exception:
            log.exception("cannot answer %s where it came from; reporting here", record.id)
            return default

    async def keep_resuming(self, replier: Replier, every: float | None = None) -> None:
        """Take over, now and then, what a replica that died left behind (its holds ran
        out), and forget old deliveries once an hour; runs until cancelled."""
        loop = asyncio.get_running_loop()
        pruned = loop.time()
        while True:
            await asyncio.sleep(every or self.lease_seconds / 2)
            try:
                taken = await self.resume(replier)
                if loop.time() - pruned >= PRUNE_EVERY:
                    pruned = loop.time()
                    gone = await self.store.prune(self.settings.keep_days)
                    log.info(
                        "forgot %d deliveries older than %g days", gone, self.settings.keep_days
                    )
            except Exception:
                log.exception("resuming requests failed; trying again later")
                continue
            if taken:
                log.info("took over %s", ", ".join(taken))

    async def handle(self, request: Request, replier: Replier) -> int:
        """Answer every command in the request; how many commands it held."""
        return (await self.run(request, replier)).commands

    async def run(self, request: Request, replier: Replier) -> Outcome:
        """Answer every command in the request: what came of it."""
        adapter = self.adapter(request.source) or Unregistered(request.source)
        if request.delivery_id and not await self.store.first_delivery(
            request.source, request.delivery_id
        ):
            if not request.resumable:
                log.info("delivery %s from %s %s", request.delivery_id, request.source, DUPLICATE)
                return Outcome()
            log.warning(
                "handling delivery %s again (an earlier attempt stopped)", request.delivery_id
            )
        if len(request.text) > MAX_MESSAGE:
            log.warning(
                "a %d-character message from %s was not read", len(request.text), request.source
            )
            await replier.post(MESSAGE_TOO_LONG.format(limit=MAX_MESSAGE, count=len(request.text)))
            return Outcome()
        names = (self.settings.name, *request.names)
        parsed = extract_commands(clean(request.text), adapter.triggers(request, names))
        if not parsed:
            return Outcome()
        limit = self.settings.max_commands
        keys = command_keys(request, [where.body for where in parsed])
        # A message that can come again (a comment in two deliveries, a redelivery after a
        # restart) runs each command once: those answered before are passed over.
        answered = [
            key is not None
            and request.message_key is not None
            and await self.store.answered(request.source, key)
            for key in keys[:limit]
        ]
        if all(answered):
            log.info("every command of %s was answered before", request.delivery_id)
            return Outcome(len(parsed))
        await replier.react("eyes")
        troubled = False
        made: list[str] = []
        failed: list[str] = []
        if len(parsed) > limit:
            troubled = True
            await replier.post(TOO_MANY_COMMANDS.format(limit=limit, rest=len(parsed) - limit))
        budget = MessageBudget()
        limited = False
        for position, where in enumerate(parsed[:limit]):
            if answered[position]:
                continue
            per_minute = self.settings.rate_per_minute
            if adapter.rate_limited and not self.rates.allow(
                request.source, request.actor, per_minute
            ):
                troubled = limited = True
                COMMAND_COUNT.labels(request.source, "?", "rate_limited").inc()
                if self.rates.warn(request.source, request.actor):
                    await replier.post(TOO_FAST.format(limit=per_minute))
                break
            ctx = Context(
                bot=self,
                request=request,
                replier=replier,
                line=where.body,
                position=position,
                key=keys[position],
                adapter=adapter,
                commands=self.commands,
                budget=budget,
                authorize=self._authorizer(adapter, request),
            )
            started = time.monotonic()
            item = await self._parse(adapter, request, where)
            outcome = await self._one(ctx, item)
            command = item.command if isinstance(item, Parsed) else None
            verb = command.verb if command else verb_of(where.body) or "?"
            log.info(
                "%s %s from %s: %s",
                request.source,
                verb,
                request.actor,
                outcome,
                extra={
                    FIELDS: {
                        "delivery": request.delivery_id,
                        "source": request.source,
                        "actor": request.actor,
                        "verb": verb,
                        "outcome": outcome,
                        "requests": list(ctx.made),
                        "seconds": round(time.monotonic() - started, 3),
                    }
                },
            )
            made += ctx.made
            if outcome in ("error", "unavailable"):
                failed.append(where.body)
            else:
                key = keys[position]
                if key is not None and request.message_key is not None:
                    await self.store.mark_answered(request.source, key)
            troubled = troubled or outcome != "ok"
        await replier.react("confused" if troubled else "rocket")
        return Outcome(len(parsed), tuple(made), tuple(failed), limited)

    def _authorizer(
        self, adapter: Adapter, request: Request
    ) -> Callable[[Command, str, Level], Awaitable[str | None]]:
        async def check(command: Command, project: str, at_least: Level) -> str | None:
            on = Revision(None, project)
            return await self.authorize(adapter, request, command, on, at_least)

        return check

    async def _parse(self, adapter: Adapter, request: Request, where: CommandLine) -> Parsed | str:
        """The command on a line, or why the person may not run it. A long line's verb is
        checked first, so a text nobody may run costs no parse; long ones are parsed off the
        event loop."""
        limits = self.settings.limits
        if len(where.body) <= LONG_LINE:
            return parse_line(where, limits=limits)
        verb = verb_of(where.body)
        command = self.commands.get(verb) if verb else None
        if command is not None:
            reason = await self.authorize(adapter, request, command)
            if reason is not None:
                return reason
        return await asyncio.to_thread(parse_line, where, limits=limits)

    async def _deny(self, request: Request, replier: Replier, verb: str, reason: str) -> str:
        await self.store.audit(
            actor=request.actor,
            source=request.source,
            place=request.place,
            action="denied",
            detail={"verb": verb, "why": reason},
        )
        COMMAND_COUNT.labels(request.source, verb, "denied").inc()
        await replier.post(DENIED.format(verb=verb, reason=reason))
        return "denied"

    async def _one(self, ctx: Context, item: Parsed | str) -> str:
        """Run one command of a message; how it went (ok, refused, denied, parse_error,
        unknown, unavailable, error). Every way ends in a reply."""
        request, replier = ctx.request, ctx.replier
        if isinstance(item, str):  # denied before its text was read
            return await self._deny(request, replier, verb_of(ctx.line) or "?", item)
        if item.error is not None:
            COMMAND_COUNT.labels(request.source, "?", "parse_error").inc()
            await replier.post(item.error.render())
            return "parse_error"
        assert item.command is not None
        verb = item.command.verb
        command = self.commands.get(verb)
        if command is None or not command.offered_by(replier, request):
            COMMAND_COUNT.labels(request.source, verb, "unknown").inc()
            await replier.post(NOT_HERE.format(verb=verb))
            return "unknown"
        reason = await self.authorize(ctx.adapter, request, command, pushed_on(item.command))
        if reason is not None:
            return await self._deny(request, replier, verb, reason)
        token = current_request.set(request.delivery_id or f"{request.source}:{request.actor}")
        try:
            await command.handler(ctx, item.command)
        except Exception as error:
            if ctx.adapter.failed_here(error):
                raise  # the place did not take the reply: the message is handled again later
            if is_transient(error):
                COMMAND_COUNT.labels(request.source, verb, "unavailable").inc()
                ERRORS.labels("taskcluster").inc()
                log.warning("Taskcluster unavailable for %r: %s", ctx.line, error)
                outcome = OUTAGE_LEFT.get(verb, NOTHING_SCHEDULED)
                await replier.post(
                    UNAVAILABLE.format(text=ctx.line, error=_short(error), outcome=outcome)
                )
                return "unavailable"
            COMMAND_COUNT.labels(request.source, verb, "error").inc()
            reference = secrets.token_hex(4)
            log.exception("command %r failed (reference %s)", ctx.line, reference)
            await replier.post(CRASHED.format(text=ctx.line, request=f"reference {reference}"))
            return "error"
        finally:
            current_request.reset(token)
        outcome = "refused" if ctx.refused else "ok"
        COMMAND_COUNT.labels(request.source, verb, outcome).inc()
        return outcome


class Unregistered(Adapter):
    """A source no adapter was registered for: its people have no level, so every command
    (each needs read at least) is refused, and they are told why."""

    def __init__(self, source: str) -> None:
        self.source = source

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        return NO_ADAPTER.format(source=self.source)


# Terminal escape sequences, control characters (but tabs and line ends), bidirectional
# overrides and isolates (which make a text read other than it runs) and lone surrogates:
# never parsed, never echoed.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def clean(text: str) -> str:
    """A message without the characters that have no business in a command."""
    return _CONTROL.sub("", text)


def pushed_on(command: AnyCommand) -> Revision | None:
    """The push a command names with `on`, if it names one."""
    revision = getattr(command, "revision", None)
    return revision if isinstance(revision, Revision) else None


def _short(error: BaseException) -> str:
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return f"HTTP {status}" if status else type(error).__name__
