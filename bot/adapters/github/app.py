"""The GitHub webhook endpoint: verify, keep, acknowledge at once; process in the background."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import gidgethub
from aiohttp import web
from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from taskcluster.exceptions import TaskclusterRestFailure

from bot.adapters.github.auth import GitHubAuth
from bot.adapters.github.client import (
    DENIED,
    UNAPPROVED,
    GitHubReplier,
    GitHubUnreachableError,
    PermissionCache,
    commit_sha,
    every,
    linked_task_groups,
    project_of,
    with_push,
)
from bot.adapters.github.events import (
    COMMENT_EVENTS,
    SOURCE,
    GitHubOrigin,
    check_run_retrigger,
    comment_request,
    installation_of,
)
from bot.adapters.github.webhook import receiver
from bot.adapters.receiving import InboxWriter, handler
from bot.config import env_flag
from bot.core import leases
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.batching import Batcher
from bot.core.request import Request, command_keys, delivery_key, derived_request_id
from bot.metrics import DELIVERIES_PARKED, ERRORS
from bot.reporting import requested_tasks
from bot.service import Bot, clean
from bot.store import RequestRecord
from grammar import Triggers, extract_commands

log = logging.getLogger(__name__)
FAILED = ("failed", "exception")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
STOP_SECONDS = 10.0  # how long shutdown waits for the inbox worker
MAX_IN_HAND = 1024  # deliveries being processed at once; the rest wait in the store
RETRY_DELAYS = (30.0, 120.0, 600.0, 1800.0)
# Failures of the services the bot talks to: logged without a traceback.
TRANSIENT = (gidgethub.HTTPException, TaskclusterRestFailure, TimeoutError, aiohttp.ClientError)
PARKED = (
    "@{actor} I could not handle the command in your comment after {attempts} tries "
    "({why}), so {done}. Please try again in a while; if it keeps failing, the bot's "
    "operators can retry it (GitHub delivery `{delivery}`)."
)
UNLISTED_SOURCE = "github:unlisted"  # the repositories told once that they are not served
UNLISTED = (
    "{repository} is not a repository this bot serves, so it does nothing here. Its "
    "operators list the repositories it serves under a project's `repositories` "
    "(TASKBOT_CONFIG)."
)


class GitHubSettingsError(ValueError):
    """A GitHub setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class GitHubSettings:
    """The webhook secret, how to call GitHub, and the bot's login there."""

    webhook_secret: str
    token: str | None = None
    api_url: str = "https://api.github.com"
    bot_login: str = "taskbot"
    app_id: str | None = None
    private_key: str | None = None
    check_runs: bool = False  # a check run per request on a pull request (Apps only)
    commit_statuses: bool = False  # else a commit status per request (a token may)

    def __repr__(self) -> str:  # never show the secret or the token
        return f"GitHubSettings(api_url={self.api_url!r}, bot_login={self.bot_login!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, bot_login: str) -> GitHubSettings | None:
        """None when GitHub is not configured (no GITHUB_WEBHOOK_SECRET)."""
        secret = env.get("GITHUB_WEBHOOK_SECRET")
        if not secret:
            if env.get("GITHUB_TOKEN"):
                raise GitHubSettingsError("GITHUB_TOKEN is set but GITHUB_WEBHOOK_SECRET is not")
            return None
        api_url = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        if not api_url.startswith(("http://", "https://")):
            raise GitHubSettingsError("GITHUB_API_URL must be an http(s) URL")
        app_id, key = env.get("GITHUB_APP_ID") or None, env.get("GITHUB_PRIVATE_KEY") or None
        if bool(app_id) != bool(key):
            raise GitHubSettingsError("set both GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or neither")
        if key and "PRIVATE KEY" not in key:
            raise GitHubSettingsError("GITHUB_PRIVATE_KEY must be the App's PEM private key")
        if not app_id and not env.get("GITHUB_TOKEN"):
            # A deploy (app.json generates the secret) that has not been given GitHub
            # credentials yet: GitHub stays off rather than the bot refusing to start.
            log.warning(
                "GITHUB_WEBHOOK_SECRET is set but neither GITHUB_TOKEN nor GITHUB_APP_ID and "
                "GITHUB_PRIVATE_KEY: the GitHub adapter is off"
            )
            return None
        try:
            checks = env_flag(env, "GITHUB_CHECK_RUNS", default=bool(app_id))
            statuses = env_flag(env, "GITHUB_COMMIT_STATUSES", default=not checks)
        except ValueError as error:
            raise GitHubSettingsError(str(error)) from None
        if checks and not app_id:
            raise GitHubSettingsError(
                "GITHUB_CHECK_RUNS needs a GitHub App (GITHUB_APP_ID and GITHUB_PRIVATE_KEY): "
                "GitHub lets only Apps create check runs"
            )
        return cls(
            secret,
            env.get("GITHUB_TOKEN") or None,
            api_url,
            bot_login,
            app_id,
            key,
            check_runs=checks,
            commit_statuses=statuses and not checks,
        )

    def auth(self, session: aiohttp.ClientSession) -> GitHubAuth:
        return GitHubAuth(
            session, self.api_url, self.bot_login, self.token, self.app_id, self.private_key
        )


class GitHubAdapter(Adapter):
    """Receives deliveries at ``/github/webhook`` and turns their comments into requests;
    people's levels are their permission on the repository, as GitHub says."""

    source = SOURCE

    def __init__(
        self,
        bot: Bot,
        settings: GitHubSettings,
        auth: GitHubAuth,
        permissions: PermissionCache | None = None,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.auth = auth
        self.permissions = permissions or PermissionCache()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._in_progress: set[str] = set()
        self._held_back = False  # the last claim had no room for all that waited
        self._handling: set[asyncio.Task[None]] = set()
        self.receiver = receiver(settings.webhook_secret)
        self.receive = handler(self.receiver, InboxWriter(bot.store, SOURCE), self.wake)
        # Deliveries marked processed in few transactions under load (a plain comment's
        # only write): fewer and shorter holds on the store the front process writes to.
        self._processed: Batcher[str, None] = Batcher(
            lambda ids: bot.store.processed_all(SOURCE, ids)
        )
        # At most this many deliveries that may make requests are processed at once (each
        # may call GitHub and Taskcluster); plain comments take no place.
        self.concurrency = 32
        self._gate = asyncio.Semaphore(self.concurrency)
        # A delivery that fails is tried again after each of these many seconds, then parked.
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        bot.register(self)

    # --- the adapter interface ---------------------------------------------------------------

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        """``@taskbot verb`` or ``/verb`` outside code and quotes; a click on a check run's
        button is said to the bot without a mention (``request.direct``)."""
        return Triggers(names=names, mention=True, slash=True, markdown=True, direct=request.direct)

    async def level_of(self, request: Request) -> Level:
        origin = _origin(request)
        gh = await self.client_for(request)
        return await self.permissions.level(gh, origin.repository, request.actor)

    def _granting(self, request: Request, verb: str) -> list[str]:
        """The GitHub teams the request's project grants ``verb`` to."""
        project = self.bot.settings.project(request.project)
        return [team for team, verbs in project.teams.items() if verb in verbs]

    async def grants(self, request: Request, verb: str) -> bool:
        """Whether a GitHub team the project grants ``verb`` to has the person."""
        gh = await self.client_for(request)
        for team in self._granting(request, verb):
            if await self.permissions.in_team(gh, team, request.actor):
                return True
        return False

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        granting = self._granting(request, verb)
        return DENIED.format(
            user=request.actor,
            have=have.label,
            repository=_origin(request).repository,
            verb=verb,
            need=need.label,
            teams="".join(f" or membership in {t}" for t in granting),
        )

    async def untrusted(
        self, request: Request, verb: str, have: Level, need: Callable[[str], Level]
    ) -> str | None:
        """A pull request from a fork runs the fork's code: it waits until someone trusted
        (whoever may `approve`) approved its head, unless the person or the author is trusted."""
        origin = _origin(request)
        if not origin.fork:
            return None
        trusted = need("approve")
        if have >= trusted:
            return None
        gh = await self.client_for(request)
        author = origin.author
        author_level = (
            await self.permissions.level(gh, origin.repository, author) if author else Level.NONE
        )
        head = request.revision or ""
        if author_level >= trusted or (
            head and await self.bot.store.approver(request.source, request.place, head)
        ):
            return None
        return UNAPPROVED.format(
            place=request.place,
            author=author or "a deleted account",
            author_level=author_level.label,
            repository=origin.repository,
            head=head[:12] or "(unknown)",
            trusted=trusted.label,
            bot=self.bot.settings.name,
        )

    def shared(self, request: Request) -> bool:
        """A pull request is about its head: `status` there covers the pull request."""
        origin = request.origin
        return isinstance(origin, GitHubOrigin) and origin.pull_request

    async def may_see(self, request: Request, record: RequestRecord) -> bool:
        """A request made on GitHub is shown to whoever may read its repository."""
        if record.source != SOURCE:
            return False
        repository = record.place.rpartition("#")[0]
        if repository.lower() == _origin(request).repository.lower():
            return True  # the person is on this repository's pull request or issue
        gh = await self.client_for(request)
        return await self.permissions.level(gh, repository, request.actor) >= Level.READ

    def failed_here(self, error: BaseException) -> bool:
        """GitHub's errors (after the replier's retries): the delivery is tried again."""
        return isinstance(error, gidgethub.GitHubException)

    async def expand_revision(self, request: Request, prefix: str) -> str | None:
        """A short hash of the request's repository, expanded by GitHub."""
        origin = request.origin
        if not isinstance(origin, GitHubOrigin) or not origin.repository:
            return None
        return await commit_sha(await self.client_for(request), origin.repository, prefix)

    async def task_groups(self, request: Request, revision: str) -> list[str]:
        """The task groups Taskcluster's App linked on the pull request's head."""
        origin = request.origin
        if not isinstance(origin, GitHubOrigin) or not origin.repository:
            return []
        return await linked_task_groups(await self.client_for(request), origin.repository, revision)

    # --- the webhook -------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_post(self.receiver.path, self.receive)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    def wake(self) -> None:
        """Deliveries wait in the inbox (kept here or by the front process): process them."""
        self._wake.set()

    async def _start(self, app: web.Application) -> None:
        self._worker = asyncio.create_task(self.run())
        self._wake.set()  # deliveries kept before a restart are processed first

    async def _stop(self, app: web.Application) -> None:
        for task in list(self._handling):  # what they did is in the store: taken up again
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            # What it was doing is in the store (the inbox): never hold shutdown up for it.
            await asyncio.wait({self._worker}, timeout=STOP_SECONDS)
            if not self._worker.done():
                log.warning("the GitHub inbox worker did not stop within %s s", STOP_SECONDS)

    async def run(self) -> None:
        """Process deliveries when one arrives, and now and then anyway: another replica's
        deliveries are left to it unless it dies (its claims run out)."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow the
            # cancellation that stops this loop, and shutdown then waits for it forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.bot.lease_seconds / 2):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.dispatch()
            except Exception:
                log.exception("processing GitHub deliveries failed; trying again later")

    async def dispatch(self) -> list[asyncio.Task[None]]:
        """Claim the deliveries waiting and start on them, without waiting for any: a plain
        comment at once, one that may make requests after the earlier ones of its pull
        request (so its commands run in the order they were written)."""
        room = MAX_IN_HAND - len(self._in_progress)
        self._held_back = room <= 0
        if room <= 0:
            return []
        rows = await self.bot.store.claim_deliveries(
            SOURCE,
            self.bot.instance,
            lease=self.bot.lease_seconds,
            limit=room,
            in_hand=list(self._in_progress),
        )
        self._held_back = len(rows) >= room  # more may wait than there was room for
        started = []
        for row in rows:
            delivery = row["delivery_id"]
            if delivery in self._in_progress:
                continue  # still being processed here; its hold was renewed meanwhile
            self._in_progress.add(delivery)
            task = asyncio.create_task(self._take(row))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)
            started.append(task)
        return started

    async def process_pending(self) -> int:
        """Process every delivery waiting and wait for them; how many were started."""
        started = await self.dispatch()
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def _take(self, row: dict[str, Any]) -> None:
        delivery = row["delivery_id"]
        try:
            async with leases.renewed(self._claim(delivery), self.bot.lease_seconds):
                error = await self._one(row)
            if error is not None:
                await self._failed(row, error)
        except Exception:
            log.exception("processing GitHub delivery %s failed", delivery)
        finally:
            self._in_progress.discard(delivery)
            if self._held_back:
                self._wake.set()  # room again for what waits in the store

    async def _one(self, row: dict[str, Any]) -> Exception | None:
        try:
            data = _payload(row["payload"])
            event = sansio.Event(data, event=row["event"], delivery_id=row["delivery_id"])
            thread = _thread(data)
        except Exception as error:  # kept, but not a payload to act on: parked in the end
            log.warning("GitHub delivery %s cannot be read: %s", row["delivery_id"], error)
            return error
        plain = (
            event.event in COMMENT_EVENTS
            and comment_request(event, bot_login=self.settings.bot_login) is None
        )
        async with contextlib.AsyncExitStack() as held:
            if not plain:  # in order within its pull request, a few at a time in all
                # asyncio's lock wakes its waiters first come, first served
                await held.enter_async_context(self.bot.exclusive(f"github-thread:{thread}"))
                await held.enter_async_context(self._gate)
            try:
                await self.process(event)
            except Exception as error:
                ERRORS.labels("github").inc()
                log.warning(
                    "processing GitHub delivery %s failed: %s",
                    row["delivery_id"],
                    what_failed(error),
                    exc_info=not isinstance(error, TRANSIENT),
                )
                return error
            await self._processed(row["delivery_id"])
        return None

    async def _failed(self, row: dict[str, Any], error: Exception) -> None:
        """A delivery that could not be handled is tried again later (the requests its
        commands made are found again, never made twice); after its last try it is parked
        for an operator, and the person who asked is told what failed and what to do."""
        store, delivery = self.bot.store, str(row["delivery_id"])
        attempt = int(row.get("attempts") or 0) + 1
        retry_in = self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
        why = what_failed(error)
        attempts = await store.delivery_failed(
            SOURCE, delivery, self.bot.instance, why, retry_in=retry_in
        )
        if attempts and attempts <= len(self.retry_delays):
            log.warning(
                "GitHub delivery %s: try %d failed; again in %.0fs", delivery, attempts, retry_in
            )
            return
        await store.park_delivery(SOURCE, delivery)
        DELIVERIES_PARKED.labels(SOURCE).inc()
        log.error("GitHub delivery %s parked after %d tries: %s", delivery, attempts, why)
        try:
            await self._tell_parked(_payload(row["payload"]), delivery, attempts, why)
        except Exception as error:  # a payload too odd to answer on: the log says it
            log.warning("delivery %s was parked without a reply: %s", delivery, error)

    async def _tell_parked(
        self, data: dict[str, Any], delivery: str, attempts: int, why: str
    ) -> None:
        repository = str((data.get("repository") or {}).get("full_name") or "")
        number = (data.get("issue") or data.get("pull_request") or {}).get("number")
        actor = str((data.get("sender") or {}).get("login") or "")
        if not repository or not isinstance(number, int):
            return
        made = [r for r in await self._made_by(data, delivery) if await self.bot.store.request(r)]
        done = (
            "nothing was scheduled"
            if not made
            else "only these were made before it failed: "
            + ", ".join(f"`{r}` (`status {r}`)" for r in made)
        )
        text = PARKED.format(actor=actor, attempts=attempts, why=why, done=done, delivery=delivery)
        try:
            gh = await self.auth.client(installation_of(data))
            await GitHubReplier(gh, repository, number).post(text)
        except Exception as error:
            log.warning(
                "could not tell %s#%s its delivery was parked: %s", repository, number, error
            )

    async def _made_by(self, data: dict[str, Any], delivery: str) -> list[str]:
        """The ids of the requests a comment's commands make (whether made or not yet)."""
        event = sansio.Event(data, event="issue_comment", delivery_id=delivery)
        request = comment_request(event, bot_login=self.settings.bot_login)
        if request is None:
            return []
        names = (self.bot.settings.name, *request.names)
        triggers = self.triggers(request, names)
        lines = [where.body for where in extract_commands(clean(request.text), triggers)]
        keys = command_keys(request, lines[: self.bot.settings.max_commands])
        return [derived_request_id(SOURCE, key) for key in keys if key is not None]

    def _claim(self, delivery: str) -> leases.Claim:
        bot = self.bot
        return lambda: bot.store.renew_delivery(
            SOURCE, delivery, bot.instance, lease=bot.lease_seconds
        )

    async def replier_for(self, record: RequestRecord) -> GitHubReplier | None:
        """Where a resumed request's status card lives: its pull request or issue."""
        repository, _, number = record.place.rpartition("#")
        if not repository or not number.isdigit():
            return None
        gh = await self.auth.client_for_repository(repository)
        # No head known here: a check run made before the restart is updated, none is made.
        return GitHubReplier(
            gh,
            repository,
            int(number),
            checks=self.settings.check_runs,
            statuses=self.settings.commit_statuses,
        )

    async def client_for(self, request: Request) -> GitHubAPI:
        origin = request.origin
        installation = origin.installation if isinstance(origin, GitHubOrigin) else None
        return await self.auth.client(installation)

    async def process(self, event: sansio.Event) -> None:
        request = comment_request(event, bot_login=self.settings.bot_login)
        if request is None:
            request = await self.check_run_request(event)
        if request is not None:
            await self._handle(event, request)
            return
        for each in await self.check_suite_requests(event):
            await self._handle(event, each)

    async def _handle(self, event: sansio.Event, request: Request) -> None:
        # The inbox gives a delivery to one replica at a time; if that one died partway,
        # handling it again carries on with what it made (request ids derive from it).
        request = replace(request, resumable=True)
        gh = await self.client_for(request)
        origin = _origin(request)
        if project_of(origin.repository, self.bot.settings.projects) is None:
            await self._unlisted(request, gh, event.delivery_id)
            return
        request = await with_push(request, gh, self.bot.settings.projects)
        origin = _origin(request)
        replier = GitHubReplier(
            gh,
            origin.repository,
            origin.number,
            origin.comment_id,
            origin.comment_kind,
            checks=self.settings.check_runs and origin.pull_request,
            statuses=self.settings.commit_statuses and origin.pull_request,
            head_sha=request.revision,
        )
        await self.bot.handle(request, replier)

    async def _unlisted(self, request: Request, gh: GitHubAPI, delivery_id: str) -> None:
        """A command from a repository no project lists: nothing is done; the repository is
        told why once (not on every comment), and the log says it each time."""
        origin = _origin(request)
        log.warning(
            "delivery %s: %s is listed by no project; nothing was done for @%s",
            delivery_id,
            origin.repository,
            request.actor,
        )
        if not await self.bot.store.first_delivery(UNLISTED_SOURCE, origin.repository.lower()):
            return
        replier = GitHubReplier(gh, origin.repository, origin.number)
        try:
            await replier.post(UNLISTED.format(repository=origin.repository))
        except Exception as error:
            log.warning("could not tell %s it is not served: %s", origin.repository, error)

    async def check_suite_requests(self, event: sansio.Event) -> list[Request]:
        """A click on "Re-run all checks" of the bot's check suite of a commit: every
        request there whose check run failed runs its failed jobs again (a `retrigger`
        request each, asked by whoever clicked, checked as a comment would be)."""
        data: dict[str, Any] = event.data
        app_id = self.settings.app_id
        if event.event != "check_suite" or data.get("action") != "rerequested" or not app_id:
            return []
        suite = data.get("check_suite") or {}
        if str((suite.get("app") or {}).get("id")) != str(app_id):
            return []  # another App's suite
        repository = str((data.get("repository") or {}).get("full_name", ""))
        head = str(suite.get("head_sha") or "")
        if not repository or not FULL_SHA.fullmatch(head):
            return []
        gh = await self.auth.client(installation_of(data))
        url = f"/repos/{repository}/commits/{head}/check-runs?app_id={app_id}&filter=latest"
        failed: dict[str, tuple[RequestRecord, list[str]]] = {}
        for run in await every(gh, url, iterable_key="check_runs"):
            if run.get("conclusion") != "failure" or not run.get("external_id"):
                continue
            record = await self._request_on(repository, str(run["external_id"]))
            if record is None or record.revision != head:
                continue
            tasks = [t.task_id for t in await self.bot.store.plan(record.id) if t.state in FAILED]
            if tasks:
                failed[record.id] = (record, tasks)
        # One request per failed one, its id derived from both: handling this delivery again
        # (a replica died) finds them, and does not take them for failed checks to re-run.
        made_here = {
            derived_request_id(SOURCE, delivery_key(f"{event.delivery_id}:{request_id}", 0))
            for request_id in failed
        }
        return [
            _retrigger(event, record, tasks, f"{event.delivery_id}:{request_id}")
            for request_id, (record, tasks) in sorted(failed.items())
            if request_id not in made_here
        ]

    async def _request_on(self, repository: str, request_id: str) -> RequestRecord | None:
        """The bot's request on a pull request or issue of ``repository`` that a check run
        names, or None: a request of another repository is not this delivery's to run."""
        record = await self.bot.store.request(request_id) if request_id else None
        if record is None or record.source != SOURCE or not record.revision:
            return None
        place_repository, _, number = record.place.rpartition("#")
        if place_repository != repository or not number.isdigit():
            return None
        return record

    async def check_run_request(self, event: sansio.Event) -> Request | None:
        """A click on "Re-run" or "Retrigger failed" of one of the bot's check runs: a
        retrigger of that request's failed tasks, asked by whoever clicked and checked as
        a comment would be."""
        request_id = check_run_retrigger(event, app_id=self.settings.app_id)
        repository = str((event.data.get("repository") or {}).get("full_name", ""))
        record = await self._request_on(repository, request_id or "")
        if record is None:
            return None
        stored = await self.bot.store.plan(record.id)
        # Its failed tasks; if none failed ("Re-run" on a green check), the jobs it asked for.
        again = [t.task_id for t in stored if t.state in FAILED] or [
            t.task_id for t in requested_tasks(stored)
        ]
        if not again:
            return None
        return _retrigger(event, record, again, event.delivery_id)


def _payload(text: str) -> dict[str, Any]:
    """A kept delivery's payload: JSON; deliveries kept before form-encoded ones were
    decoded at the door hold the form (``payload=...``)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = json.loads(urllib.parse.parse_qs(text)["payload"][0])
    if not isinstance(data, dict):
        raise ValueError("a kept delivery's payload is not a JSON object")
    return data


def _thread(data: dict[str, Any]) -> str:
    """The pull request or issue a delivery is about: its deliveries are handled in order."""
    repository = data.get("repository") or {}
    thread = data.get("issue") or data.get("pull_request") or {}
    if not isinstance(repository, dict) or not isinstance(thread, dict):
        raise ValueError("the payload's repository or thread is not an object")
    return f"{repository.get('full_name')}#{thread.get('number')}"


def what_failed(error: BaseException) -> str:
    """What failed, in a few words a person can act on (never the error's own text, which
    may hold a URL with credentials)."""
    if isinstance(error, gidgethub.HTTPException):
        return f"GitHub answered {int(error.status_code)}"
    if isinstance(error, GitHubUnreachableError):
        return "GitHub could not be reached"
    if isinstance(error, TaskclusterRestFailure):
        return f"Taskcluster answered {error.status_code}"
    if isinstance(error, TimeoutError):
        return "a service did not answer in time"
    if isinstance(error, aiohttp.ClientError):
        return f"a connection failed ({type(error).__name__})"
    return f"an error on the bot's side ({type(error).__name__})"


def _retrigger(
    event: sansio.Event, record: RequestRecord, task_ids: list[str], delivery_id: str
) -> Request:
    """A click on one of the bot's checks, as a command: retrigger these tasks of the
    request's push, asked by whoever clicked, on the request's pull request."""
    repository, _, number = record.place.rpartition("#")
    return Request(
        source=SOURCE,
        actor=str((event.data.get("sender") or {}).get("login", "")),
        place=record.place,
        text=f"retrigger {' '.join(task_ids)} on {record.project}@{record.revision}",
        delivery_id=delivery_id,
        direct=True,  # the click says it to the bot: no `@taskbot` needed
        origin=GitHubOrigin(
            repository,
            int(number),
            pull_request=True,
            installation=installation_of(event.data),
        ),
    )


def _origin(request: Request) -> GitHubOrigin:
    origin = request.origin
    if not isinstance(origin, GitHubOrigin):
        raise TypeError(f"{request.source} request {request.place} has no GitHub origin")
    return origin
