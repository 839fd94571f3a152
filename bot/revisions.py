"""Short revisions (7 to 39 hex digits) expanded to the full hash pushes are indexed by."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.core.adapter import Adapter
from bot.core.request import Request
from bot.core.runtime import Runtime
from bot.tc.decision import DecisionNotFoundError

FULL_LENGTH = 40
NO_MATCH = (
    "`{prefix}` is no push of {project} that the bot knows by a short revision: give all "
    "40 hex digits (Treeherder shows them), or `on {project}` for its latest push."
)
AMBIGUOUS = "`{prefix}` could be {choices} on {project}: give more of its digits."


class RevisionError(LookupError):
    """A short revision that names no push, or more than one."""


async def expand_revision(
    bot: Runtime,
    project: str,
    revision: str,
    request: Request | None = None,
    adapter: Adapter | None = None,
) -> str:
    """The full revision ``revision`` abbreviates, found (in order) as the place's own push
    (a pull request's head), a push the bot has worked on, the project's latest push, or
    a commit of the place's repository (asked of ``adapter``); ``RevisionError`` says why
    when none or several."""
    prefix = revision.lower()
    if len(prefix) >= FULL_LENGTH:
        return prefix
    async for candidates in _candidates(bot, project, prefix, request, adapter):
        found = sorted(
            {
                c.lower()
                for c in candidates
                if len(c) == FULL_LENGTH and c.lower().startswith(prefix)
            }
        )
        if len(found) == 1:
            return found[0]
        if found:
            choices = ", ".join(f"`{r[:12]}`" for r in found[:5])
            raise RevisionError(AMBIGUOUS.format(prefix=prefix, choices=choices, project=project))
    raise RevisionError(NO_MATCH.format(prefix=prefix, project=project))


async def _candidates(
    bot: Runtime, project: str, prefix: str, request: Request | None, adapter: Adapter | None
) -> AsyncIterator[list[str]]:
    """Full revisions from each place that may know the push, cheapest first."""
    here = request is not None and (request.project or bot.settings.default_project) == project
    if here and request is not None and request.revision:
        yield [request.revision]
    yield await bot.store.revisions_starting(project, prefix)
    try:
        latest = await bot.decisions.find(project, None, bot.settings.project(project).routes)
    except DecisionNotFoundError:
        pass
    else:
        yield [await bot.decisions.revision_of(latest) or ""]
    if here and request is not None and adapter is not None:
        yield [await adapter.expand_revision(request, prefix) or ""]
