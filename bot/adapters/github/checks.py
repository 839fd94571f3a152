"""A GitHub check run per request on a pull request: the status card in the Checks tab."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.core.request import Progress

RETRIGGER_FAILED = "retrigger-failed"  # the identifier of the button on a failed check
NAME_LIMIT = 100
TEXT_LIMIT = 65535
RETRIGGER_ACTION = {
    "label": "Retrigger failed",  # GitHub: at most 20 characters
    "description": "Run this request's failed jobs again",  # at most 40
    "identifier": RETRIGGER_FAILED,  # at most 20
}


def check_run_body(progress: Progress, *, create: bool) -> dict[str, Any]:
    """The body of ``POST /repos/{owner}/{repo}/check-runs`` (``create``) or of its PATCH."""
    name = f"taskbot: {progress.name}"
    if len(name) > NAME_LIMIT:
        name = name[: NAME_LIMIT - 1] + "…"
    summary = progress.text
    if len(summary) > TEXT_LIMIT:
        summary = summary[: TEXT_LIMIT - 1] + "…"
    body: dict[str, Any] = {
        "name": name,
        "external_id": progress.request_id,
        "details_url": progress.details_url,
        "output": {"title": progress.title, "summary": summary},
    }
    if create:
        body["head_sha"] = progress.revision
    if progress.finished:
        body["status"] = "completed"
        body["conclusion"] = "failure" if progress.failed else "success"
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        body["completed_at"] = stamp.isoformat() + "Z"
        body["actions"] = [RETRIGGER_ACTION] if progress.failed else []
    else:
        body["status"] = "in_progress"
    return body
