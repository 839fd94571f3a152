"""A GitHub commit status per request on a pull request's head: what a deployment with a
token shows beside the chat, where check runs (GitHub Apps only) cannot be made."""

from __future__ import annotations

from typing import Any

from bot.core.request import Progress

DESCRIPTION_LIMIT = 140  # GitHub refuses a longer description


def status_context(request_id: str) -> str:
    """One context per request: two requests on a commit are two lines, never one."""
    return f"taskbot/{request_id}"


def status_body(progress: Progress) -> dict[str, Any]:
    """The body of ``POST /repos/{owner}/{repo}/statuses/{sha}``."""
    state = ("failure" if progress.failed else "success") if progress.finished else "pending"
    description = f"{progress.name}: {progress.title}"
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 1] + "…"
    return {
        "state": state,
        "target_url": progress.details_url,
        "description": description,
        "context": status_context(progress.request_id),
    }
