"""Talking back to GitHub: comments and reactions, permission levels, pull-request heads."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import aiohttp
import gidgethub
from gidgethub.abc import GitHubAPI

from bot.adapters.github.checks import check_run_body
from bot.adapters.github.events import GitHubOrigin
from bot.adapters.github.limits import with_retries
from bot.adapters.github.statuses import status_body
from bot.core.access import Level
from bot.core.request import Progress, Request
from bot.core.settings import ProjectSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

MARKER = "<!-- taskbot:request:{request} -->"
MAX_COMMENT = 65536  # GitHub refuses a longer comment body (422)
CUT = "… and {count:,} more lines, cut to fit GitHub's limit on a comment's length."
REQUEST_AT_START = re.compile(r"^\[(r[0-9a-f]{4,16})\]")
DENIED = "@{user} has {have} permission on {repository}; `{verb}` needs {need}{teams}."
UNAPPROVED = (
    "{place} comes from a fork by @{author}, who has {author_level} permission on "
    "{repository}, and its head {head} is not approved: someone with {trusted} permission "
    "must review it and comment `@{bot} approve` (their own commands need no approval)."
)


@dataclass
class GitHubReplier:
    """Replies as comments on the pull request (or issue), reactions on the command's comment;
    a request's status card is one comment, edited in place as its tasks finish."""

    gh: GitHubAPI
    repository: str
    number: int
    comment_id: int | None = None
    comment_kind: str = "issues"  # "pulls" for a comment on a line of the diff
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # how rate-limit waits pass
    checks: bool = False  # show each request as a check run (a GitHub App's permission)
    statuses: bool = False  # else as a commit status (what a token may do)
    head_sha: str | None = None  # the pull request's head: the commit checks are made on

    async def post(self, text: str) -> str:
        url = f"/repos/{self.repository}/issues/{self.number}/comments"
        created = await _sent(
            with_retries(lambda: self.gh.post(url, data={"body": _marked(text)}), sleep=self.sleep)
        )
        return str(created["id"])

    async def notify(self, actor: str, text: str) -> None:
        """A new comment mentioning the person: an edited card notifies nobody."""
        await self.post(f"@{actor} {text}")

    async def edit(self, reference: str, text: str) -> None:
        url = f"/repos/{self.repository}/issues/comments/{reference}"
        await _sent(
            with_retries(lambda: self.gh.patch(url, data={"body": _marked(text)}), sleep=self.sleep)
        )

    async def find_card(self, request_id: str) -> str | None:
        """The bot's own comment carrying ``request_id``'s marker, if an earlier attempt
        posted one without recording it (it died in between)."""
        marker = MARKER.format(request=request_id)
        url = f"/repos/{self.repository}/issues/{self.number}/comments"
        found = None
        for comment in await every(self.gh, url, sleep=self.sleep):
            user = comment.get("user") or {}
            if marker in str(comment.get("body", "")) and user.get("type") == "Bot":
                found = str(comment["id"])
        return found

    async def show_progress(self, reference: str | None, progress: Progress) -> str | None:
        """Create the request's check run on the pull request's head, or bring it up to
        date; its id, or None where there is none (checks off, or another commit). With
        commit statuses instead, the request's status on the head."""
        if not self.checks:
            return await self._commit_status(reference, progress) if self.statuses else None
        if reference is None:
            if progress.revision != self.head_sha:
                return None  # a push of another project, or a resumed request: no new check
            reference = await self._find_check_run(progress)
        if reference is None:
            url = f"/repos/{self.repository}/check-runs"
            body = check_run_body(progress, create=True)
            created = await with_retries(lambda: self.gh.post(url, data=body), sleep=self.sleep)
            return str(created["id"])
        url = f"/repos/{self.repository}/check-runs/{reference}"
        body = check_run_body(progress, create=False)
        await with_retries(lambda: self.gh.patch(url, data=body), sleep=self.sleep)
        return reference

    async def _commit_status(self, reference: str | None, progress: Progress) -> str | None:
        """Pending when submitted, success or failure when finished: two statuses a
        request (GitHub keeps at most 1,000 per commit and context); the card has the rest."""
        if reference is None and progress.revision != self.head_sha:
            return None  # not the pull request's head, or a resumed request: none is made
        if reference is not None and not progress.finished:
            return reference
        url = f"/repos/{self.repository}/statuses/{progress.revision}"
        body = status_body(progress)
        await with_retries(lambda: self.gh.post(url, data=body), sleep=self.sleep)
        return str(body["context"])

    async def _find_check_run(self, progress: Progress) -> str | None:
        """The request's check run if an earlier attempt made it without recording it."""
        url = f"/repos/{self.repository}/commits/{progress.revision}/check-runs"
        for run in await every(self.gh, url, iterable_key="check_runs", sleep=self.sleep):
            if run.get("external_id") == progress.request_id:
                return str(run["id"])
        return None

    async def react(self, reaction: str) -> None:
        if self.comment_id is None:
            return
        kind = self.comment_kind
        url = f"/repos/{self.repository}/{kind}/comments/{self.comment_id}/reactions"
        await _sent(
            with_retries(
                lambda: self.gh.post(
                    url, data={"content": reaction}, accept="application/vnd.github+json"
                ),
                sleep=self.sleep,
            )
        )


class GitHubUnreachableError(gidgethub.GitHubException):
    """GitHub could not be reached (connections refused or dropped, calls timed out), even
    after retries: a failure of GitHub's, like its 5xx."""


async def _sent(call: Awaitable[T]) -> T:
    """GitHub's answer to ``call``; when it cannot be reached, a GitHub error all the same."""
    try:
        return await call
    except (aiohttp.ClientError, TimeoutError) as error:
        raise GitHubUnreachableError(f"{type(error).__name__}: {error}") from error


async def every(
    gh: GitHubAPI,
    url: str,
    *,
    iterable_key: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[dict[str, Any]]:
    """Every item of a paged list, read again from the start if GitHub fails partway."""

    async def read() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pages = gh.getiter(url, iterable_key=iterable_key) if iterable_key else gh.getiter(url)
        async for item in pages:
            found.append(item)
        return found

    return await with_retries(read, sleep=sleep)


def _marked(text: str) -> str:
    """A request's messages carry a hidden marker, so the bot finds its status card again;
    the whole fits GitHub's limit on a comment's length."""
    found = REQUEST_AT_START.match(text)
    marker = f"\n\n{MARKER.format(request=found[1])}" if found else ""
    return fitted(text, MAX_COMMENT - len(marker)) + marker


def fitted(text: str, limit: int) -> str:
    """``text`` cut at a line to at most ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    lines = text.splitlines()
    kept: list[str] = []
    size = 0
    for line in lines:
        note = CUT.format(count=len(lines) - len(kept))
        if size + len(line) + 1 + len(note) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    left = len(lines) - len(kept)
    note = CUT.format(count=left)
    return "\n".join(kept)[: limit - len(note) - 1] + "\n" + note


@dataclass
class PermissionCache:
    """Collaborator permission levels, asked of GitHub and kept for ``seconds``."""

    seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, str], tuple[float, Level]] = field(default_factory=dict)
    _members: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)

    async def level(self, gh: GitHubAPI, repository: str, user: str) -> Level:
        key = (repository, user.lower())
        cached = self._seen.get(key)
        if cached and self.clock() - cached[0] < self.seconds:
            return cached[1]
        answer = await with_retries(
            lambda: gh.getitem(f"/repos/{repository}/collaborators/{user}/permission")
        )
        level = as_level(str(answer.get("role_name") or answer.get("permission") or "none"))
        self._seen[key] = (self.clock(), level)
        return level

    async def in_team(self, gh: GitHubAPI, team: str, user: str) -> bool:
        """Whether ``user`` is an active member of ``team`` (org/team-slug; members of its
        child teams count). A team the bot cannot see has no members for it."""
        key = (team.lower(), user.lower())
        cached = self._members.get(key)
        if cached and self.clock() - cached[0] < self.seconds:
            return cached[1]
        org, _, slug = team.partition("/")
        try:
            answer = await with_retries(
                lambda: gh.getitem(f"/orgs/{org}/teams/{slug}/memberships/{user}")
            )
            member = bool(answer.get("state") == "active")  # "pending": invited, not in yet
        except gidgethub.BadRequest as error:
            if error.status_code != 404:
                raise
            member = False
        self._members[key] = (self.clock(), member)
        return member


def as_level(role: str) -> Level:
    """A repository role as a level; a custom role GitHub names otherwise counts as none."""
    try:
        return Level.named(role)
    except ValueError:
        return Level.NONE


def project_of(repository: str, projects: Mapping[str, ProjectSettings]) -> str | None:
    """The project that lists ``repository`` (GitHub's names ignore case), if one does."""
    wanted = repository.lower()
    return next(
        (p.name for p in projects.values() if wanted in (r.lower() for r in p.repositories)),
        None,
    )


async def with_push(
    request: Request, gh: GitHubAPI, projects: Mapping[str, ProjectSettings]
) -> Request:
    """The request with its project (by repository) and, on a pull request, the head
    commit pinned now (a later push to the branch does not change what it is about),
    whether that head lives in a fork, and who opened the pull request."""
    origin = request.origin
    assert isinstance(origin, GitHubOrigin)
    repository = origin.repository
    request = replace(request, project=project_of(repository, projects) or request.project)
    if not origin.pull_request:
        return request
    pull = await with_retries(lambda: gh.getitem(f"/repos/{repository}/pulls/{origin.number}"))
    head_repository = ((pull["head"].get("repo") or {}).get("full_name")) or ""
    base_repository = ((pull.get("base") or {}).get("repo") or {}).get("full_name") or repository
    pinned = replace(
        origin,
        # A deleted fork has no repository any more: it is still not the base.
        fork=head_repository.lower() != base_repository.lower(),
        author=str((pull.get("user") or {}).get("login") or ""),
    )
    return replace(request, revision=str(pull["head"]["sha"]), origin=pinned)


async def commit_sha(gh: GitHubAPI, repository: str, ref: str) -> str | None:
    """The full SHA of ``ref`` (a short hash) in ``repository``; None when GitHub knows no
    such commit (404, or 422 for an unknown or ambiguous hash) or cannot say now."""
    try:
        commit = await with_retries(lambda: gh.getitem(f"/repos/{repository}/commits/{ref}"))
    except gidgethub.BadRequest as error:
        if error.status_code not in (404, 409, 422):
            log.warning("looking up commit %s of %s: %s", ref, repository, error)
        return None
    except gidgethub.GitHubException as error:
        log.warning("looking up commit %s of %s: %s", ref, repository, error)
        return None
    sha = commit.get("sha") if isinstance(commit, dict) else None
    return str(sha) if sha else None


TASKCLUSTER_APPS = ("taskcluster", "taskcluster-staging", "community-tc-integration")
# A status links the task group; a check run of Taskcluster's App links its task (the
# decision task's id is its group's): either names a candidate decision task.
GROUP_LINK = re.compile(r"/tasks/(?:groups/)?([A-Za-z0-9_-]{22})(?:[/?#]|$)")


async def linked_task_groups(gh: GitHubAPI, repository: str, sha: str) -> list[str]:
    """Task groups that Taskcluster's GitHub App linked on commit ``sha``: its check runs'
    ``details_url`` and its statuses' ``target_url`` (newest first). Anyone may post a
    status, so only check runs of a Taskcluster App and statuses whose context is
    Taskcluster's count; the group is then verified against Taskcluster itself."""
    found: list[str] = []
    try:
        runs = await with_retries(
            lambda: gh.getitem(f"/repos/{repository}/commits/{sha}/check-runs?per_page=100")
        )
        for run in sorted(
            runs.get("check_runs", []), key=lambda r: str(r.get("started_at") or ""), reverse=True
        ):
            if (run.get("app") or {}).get("slug") in TASKCLUSTER_APPS:
                found += GROUP_LINK.findall(str(run.get("details_url") or ""))
        statuses = await with_retries(
            lambda: gh.getitem(f"/repos/{repository}/commits/{sha}/statuses?per_page=100")
        )
        for status in statuses if isinstance(statuses, list) else []:
            if str(status.get("context") or "").startswith("Taskcluster"):
                found += GROUP_LINK.findall(str(status.get("target_url") or ""))
    except gidgethub.GitHubException as error:
        log.warning("the checks of %s@%s could not be read: %s", repository, sha, error)
    return list(dict.fromkeys(found))
