"""The JSON API: runnable jobs of a push (Treeherder's format), commands over HTTP,
requests and their tasks; described by OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.adapters.bodies import bearer, header, read_at_most, same_secret
from bot.adapters.openapi import OPENAPI
from bot.config import env_flag
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.request import Origin, Request
from bot.graph import ResolveError, Resolver
from bot.graph.resolve import MAX_QUERY_LENGTH, MAX_QUERY_TERMS, too_big
from bot.reporting import group_url, requested_tasks, task_url
from bot.revisions import RevisionError, expand_revision
from bot.service import Bot
from bot.store import RequestRecord
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.retry import is_transient
from grammar import Jobs, ParseError, Query, Triggers, lines_of, parse_command
from grammar.vocabulary import HEX_NODE, LATEST_WORDS, PROJECT_NAME

log = logging.getLogger(__name__)
SOURCE = "http"
PREFIX = "/api/v1"
MAX_BODY = 64 * 1024  # a command is a few lines; anything bigger is refused
MAX_COMMAND_LINES = 20
SIGNATURE_HEADER = "X-Taskbot-Signature-256"
ACTOR_HEADER = "X-Taskbot-Actor"
TIMESTAMP_HEADER = "X-Taskbot-Timestamp"
SIGNED_WITHIN = 300.0  # seconds a signed call's timestamp may be off from the bot's clock
REPLAYS = "http:signed"  # the store keeps the signatures seen, so none is used twice
# A token's tier as a level: read tokens may do what read or triage allows (the command
# table and projects' `permissions` say what each command needs), write tokens anything.
TIERS = {"read": Level.TRIAGE, "write": Level.ADMIN}
READ_ONLY = (
    "the token of {actor} may read only; `{verb}` needs a token with write access "
    "(TASKBOT_API_TOKENS)."
)


class ApiSettingsError(ValueError):
    """An API setting is malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """Who a bearer token speaks for, and whether it may change things."""

    actor: str
    level: str = "read"  # or "write"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Bearer tokens (token -> who) and the secret of HMAC-signed bodies (outgoing webhooks
    of other chat systems), which act for the actor named in ``X-Taskbot-Actor``."""

    tokens: Mapping[str, ApiToken] = field(default_factory=dict)
    secret: str | None = None
    secret_level: str = "write"
    # Whether the requests (who asked what, where) are readable without a token.
    public_reads: bool = False

    def __repr__(self) -> str:  # never show tokens or the secret
        return f"ApiSettings({len(self.tokens)} tokens, signed bodies: {bool(self.secret)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        """``TASKBOT_API_TOKENS="alice:write:TOKEN,dashboard:read:TOKEN2"`` and
        ``TASKBOT_API_SECRET``."""
        tokens: dict[str, ApiToken] = {}
        for item in filter(None, (t.strip() for t in env.get("TASKBOT_API_TOKENS", "").split(","))):
            actor, _, rest = item.partition(":")
            level, _, token = rest.partition(":")
            if not actor or level not in ("read", "write") or len(token) < 16:
                raise ApiSettingsError(
                    "TASKBOT_API_TOKENS holds NAME:LEVEL:TOKEN items (LEVEL read or write, "
                    "TOKEN at least 16 characters), separated by commas"
                )
            tokens[token] = ApiToken(actor, level)
        secret = env.get("TASKBOT_API_SECRET") or None
        if secret is not None and len(secret) < 16:
            raise ApiSettingsError("TASKBOT_API_SECRET must be at least 16 characters")
        try:
            public = env_flag(env, "TASKBOT_PUBLIC_READS", default=False)
        except ValueError as error:
            raise ApiSettingsError(str(error)) from None
        return cls(tokens, secret, public_reads=public)


@dataclass(frozen=True, slots=True)
class ApiOrigin(Origin):
    """A call to the API: the tier of the token (or signed body) that made it."""

    tier: str = "read"


@dataclass
class CollectingReplier:
    """Keeps what the bot answers, for the HTTP response."""

    replies: list[str] = field(default_factory=list)

    async def post(self, text: str) -> str:
        self.replies.append(text)
        return str(len(self.replies))

    async def react(self, reaction: str) -> None:
        return None


def sign(secret: str, timestamp: str, actor: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a signed call carries: of its timestamp, its sender and its body."""
    signed = f"{timestamp}\n{actor}\n".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ApiAdapter(Adapter):
    """The API's routes on the bot's HTTP server, and commands over HTTP: every line of a
    body is a command; a token's tier is its level."""

    source = SOURCE

    def __init__(self, bot: Bot, settings: ApiSettings) -> None:
        self.bot = bot
        self.settings = settings
        bot.register(self)

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        return Triggers(names=names, mention=True, address=True, slash=True, bang=True, direct=True)

    async def level_of(self, request: Request) -> Level:
        origin = request.origin
        return TIERS.get(origin.tier, Level.NONE) if isinstance(origin, ApiOrigin) else Level.NONE

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        return READ_ONLY.format(actor=request.actor, verb=verb)

    def install(self, app: web.Application) -> None:
        router = app.router
        router.add_get(f"{PREFIX}/openapi.json", self.openapi)
        router.add_get(f"{PREFIX}/projects", self.projects)
        router.add_get(
            f"{PREFIX}/projects/{{project}}/pushes/{{revision}}/runnable-jobs", self.runnable_jobs
        )
        router.add_post(f"{PREFIX}/commands", self.commands)
        router.add_get(f"{PREFIX}/requests", self.requests)
        router.add_get(f"{PREFIX}/requests/{{request_id}}", self.request)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def projects(self, request: web.Request) -> web.Response:
        settings = self.bot.settings
        names = sorted({settings.default_project, *settings.projects})
        return web.json_response({"default": settings.default_project, "projects": names})

    # --- runnable jobs ---------------------------------------------------------------------

    async def runnable_jobs(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        revision = request.match_info["revision"]
        if not PROJECT_NAME.fullmatch(project):
            return _error(400, f"`{project[:60]}` is not a project name")
        if revision.lower() in LATEST_WORDS:
            node = None
        elif 7 <= len(revision) <= 40 and HEX_NODE.fullmatch(revision):
            node = revision.lower()
        else:
            return _error(400, f"`{revision}` is not a revision: 7 to 40 hex digits, or latest")
        platforms = request.query.getall("platform", [])
        filters: tuple[Any, ...] = ()
        if platforms:
            try:
                parsed = parse_command("jobs for " + " ".join(platforms))
            except ParseError as error:
                return _error(400, f"platform: {error.message}")
            assert isinstance(parsed, Jobs)
            filters = parsed.filters
        query = request.query.get("q", "").strip()
        if too_big(query):
            return _error(
                400, f"q: at most {MAX_QUERY_TERMS} terms and {MAX_QUERY_LENGTH} characters"
            )
        decisions = self.bot.decisions
        routes = self.bot.settings.project(project).routes
        try:
            if node is not None:
                node = await expand_revision(self.bot, project, node)
            decision = await decisions.find(project, node, routes)
            graph = await decisions.graph(decision)
            existing = await decisions.merged_labels(decision, project, routes)
            if node is None:
                node = await decisions.revision_of(decision)
        except (DecisionNotFoundError, RevisionError) as error:
            return _error(404, str(error))
        except ArtifactError as error:
            return _error(502, f"the push's task graph could not be read: {error}")
        except Exception as error:
            if not is_transient(error):
                raise
            return _error(503, "Taskcluster did not answer; try again in a minute")
        resolver = Resolver(graph, filters, shortlist_limit=10**9)
        labels: list[str] = []
        note = None
        if query:
            try:
                found = await asyncio.to_thread(resolver.resolve, [Query(query)])
                labels = list(found.labels)
            except ResolveError as error:
                note = str(error)  # nothing matches: say why, as the chat would
        else:
            allowed = resolver.allowed
            labels = [x for i, x in enumerate(graph.labels) if allowed is None or i in allowed]
        if not labels and filters and note is None:
            wanted = ", ".join(f.canonical() for f in filters)
            note = f"no job of this push runs on {wanted}"
        jobs: dict[str, Any] = {}
        for label in labels:
            job = graph.runnable_job(label)
            if job is not None:
                jobs[label] = {**job, "alreadyRan": label in existing}
        body: dict[str, Any] = {
            "project": project,
            "revision": node or "latest",
            "latest": revision.lower() in LATEST_WORDS,
            "decisionTaskId": decision,
            "total": len(graph),
            "count": len(jobs),
            "jobs": jobs,
        }
        if note:
            body["note"] = note
        return web.json_response(body)

    # --- commands ----------------------------------------------------------------------------

    async def _caller(self, request: web.Request, body: bytes) -> tuple[str, ApiToken] | str:
        """Who is calling (a name for their idempotency keys, and their token), or why they
        may not. A signed call signs its timestamp and its sender with its body, and is
        taken once."""
        credential = bearer(request)
        if credential is not None:
            holder = self._holder(credential)
            if holder is None:
                return "the bearer token is not one this bot knows"
            return f"token:{holder.actor}", holder
        signature = header(request, SIGNATURE_HEADER)
        if not (signature and self.settings.secret):
            return f"send `Authorization: Bearer TOKEN` or a body signed in {SIGNATURE_HEADER}"
        actor = header(request, ACTOR_HEADER).strip()
        stamp = header(request, TIMESTAMP_HEADER).strip()
        if not actor or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return (
                f"a signed call names its sender in {ACTOR_HEADER} and its time (Unix seconds) "
                f"in {TIMESTAMP_HEADER}, and signs both with its body"
            )
        expected = "sha256=" + sign(self.settings.secret, stamp, actor, body)
        if not same_secret(expected, signature):
            return f"the {SIGNATURE_HEADER} signature does not match the call"
        if abs(time.time() - int(stamp)) > SIGNED_WITHIN:
            return f"the call was signed more than {SIGNED_WITHIN:.0f} s away from now"
        if not await self.bot.store.first_delivery(REPLAYS, signature):
            return "this signed call was made before; sign each call anew"
        # A signed sender is not the token of the same name: its name says it was signed.
        signed_as = f"signed:{actor[:100]}"
        return signed_as, ApiToken(signed_as, self.settings.secret_level)

    async def commands(self, request: web.Request) -> web.Response:
        raw = await read_at_most(request, MAX_BODY)
        if raw is None:
            return _error(413, f"a command body is at most {MAX_BODY} bytes")
        who = await self._caller(request, raw)
        if isinstance(who, str):
            return _error(401, who)
        name, caller = who
        try:
            data = json.loads(raw)
        except ValueError:  # not UTF-8, not JSON, or a number too long to read
            return _error(400, 'the body must be JSON: {"text": "schedule ..."}')
        except RecursionError:
            return _error(400, "the body's JSON is nested too deeply")
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, 'the body needs "text": the command, e.g. "schedule mochitest-1"')
        if len(lines_of(text)) > MAX_COMMAND_LINES:
            return _error(400, f"at most {MAX_COMMAND_LINES} command lines per call")
        project = data.get("project")
        if project is not None and not isinstance(project, str):
            return _error(400, '"project" must be a string')
        key = header(request, "Idempotency-Key").strip()[:200] or None
        if key is not None and not await self.bot.store.bind_key(
            name, key, hashlib.sha256(raw).hexdigest()
        ):
            return _error(422, "this Idempotency-Key was used before with another body")
        bot_request = Request(
            source=SOURCE,
            actor=caller.actor,
            place=f"api:{caller.actor}",
            text=text,
            project=project or None,
            # Length-prefixed: no sender's name and key can make another's.
            delivery_id=f"{len(name)}:{name}:{key}" if key else None,
            direct=True,
            # A client retrying with the same key (its call died with a replica) gets the
            # requests of the first attempt carried on and reported, never new ones.
            resumable=key is not None,
            origin=ApiOrigin(caller.level),
        )
        replier = CollectingReplier()
        outcome = await self.bot.run(bot_request, replier)
        made = [r for r in dict.fromkeys(outcome.made) if await self.bot.store.request(r)]
        body = {"replies": list(replier.replies), "requestIds": made}
        if outcome.commands == 0:
            return _error(400, "the text holds no command")
        if outcome.limited:
            return web.json_response(body, status=429, headers={"Retry-After": "60"})
        if outcome.failed:
            # Something failed on this side: say so in the status too, so that a client
            # retries (safely, with its Idempotency-Key) instead of taking it as answered.
            return web.json_response(body, status=503, headers={"Retry-After": "1"})
        return web.json_response(body)

    # --- requests ---------------------------------------------------------------------------

    def _reader(self, request: web.Request) -> str | None:
        """Why the caller may not read requests, if they may not."""
        if self.settings.public_reads:
            return None
        credential = bearer(request)
        if credential is not None and self._holder(credential) is not None:
            return None
        return (
            "requests are read with a bearer token (TASKBOT_API_TOKENS), unless the operators "
            "make them public (TASKBOT_PUBLIC_READS)"
        )

    def _holder(self, credential: str) -> ApiToken | None:
        """Who a bearer token speaks for, if it is one of the configured tokens."""
        return next(
            (who for token, who in self.settings.tokens.items() if same_secret(token, credential)),
            None,
        )

    def _private(self, record: RequestRecord) -> bool:
        adapter = self.bot.adapter(record.source)
        return adapter is not None and adapter.private(record)

    async def requests(self, request: web.Request) -> web.Response:
        refused = self._reader(request)
        if refused is not None:
            return _error(401, refused)
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return _error(400, "limit must be a whole number from 1 to 200")
        if not 1 <= limit <= 200:
            return _error(400, "limit must be a whole number from 1 to 200")
        records = await self.bot.store.recent_requests(limit=limit)
        shown = [r for r in records if not self._private(r)]  # never a private message's
        return web.json_response({"requests": [await self._summary(r) for r in shown]})

    async def request(self, request: web.Request) -> web.Response:
        refused = self._reader(request)
        if refused is not None:
            return _error(401, refused)
        record = await self.bot.store.request(request.match_info["request_id"])
        if record is None or self._private(record):
            return _error(404, f"there is no request {request.match_info['request_id'][:40]}")
        body = await self._summary(record)
        stored = await self.bot.store.plan(record.id)
        asked = {t.task_id for t in requested_tasks(stored)}
        body["tasks"] = [
            {
                "taskId": t.task_id,
                "label": t.label,
                "state": t.state or ("pending" if t.submitted else "unscheduled"),
                "requested": t.task_id in asked,
                "url": task_url(self.bot, t.task_id),
            }
            for t in stored
        ]
        treeherder = self.bot.settings.project(record.project).treeherder_url
        body["links"] = {
            "taskGroup": group_url(self.bot, record.decision_task_id)
            if record.decision_task_id
            else None,
            "treeherder": (
                f"{treeherder.rstrip('/')}/jobs?repo={record.project}&revision={record.revision}"
                if treeherder and record.revision
                else None
            ),
        }
        return web.json_response(body)

    async def _summary(self, record: RequestRecord) -> dict[str, Any]:
        stored = await self.bot.store.plan(record.id)
        counts = Counter(t.state or ("pending" if t.submitted else "unscheduled") for t in stored)
        return {
            "id": record.id,
            "state": record.state,
            "source": record.source,
            "actor": record.actor,
            "place": record.place,
            "project": record.project,
            "revision": record.revision,
            "command": record.command or record.text,
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "error": record.error,
            "taskCount": len(stored),
            "counts": dict(counts),
        }
