"""GitHub events as bot requests: which comments carry commands, and for whom; no I/O."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio

from bot.request import Request
from grammar import GITHUB, Triggers, extract_commands


def _command_lines(body: str, triggers: Triggers) -> list[str]:
    return [found.source for found in extract_commands(body or "", triggers)]


def comment_request(
    event: sansio.Event, *, bot_login: str, triggers: Triggers = GITHUB
) -> Request | None:
    """The request an ``issue_comment`` event makes, or None when it makes none.

    Only ``created`` and ``edited`` comments count; comments by bots (this one included)
    never do. An edited comment runs only the command lines it did not have before, so
    fixing a typo elsewhere in it schedules nothing again.
    """
    if event.event != "issue_comment" or event.data.get("action") not in ("created", "edited"):
        return None
    data: dict[str, Any] = event.data
    comment = data["comment"]
    user = comment.get("user") or {}
    login = str(user.get("login", ""))
    if user.get("type") == "Bot" or login.lower() in (
        bot_login.lower(),
        f"{bot_login.lower()}[bot]",
    ):
        return None
    lines = _command_lines(comment.get("body") or "", triggers)
    if data["action"] == "edited":
        before = set(
            _command_lines(
                ((data.get("changes") or {}).get("body") or {}).get("from", ""), triggers
            )
        )
        lines = [line for line in lines if line not in before]
    if not lines:
        return None
    repository = data["repository"]["full_name"]
    issue = data["issue"]
    return Request(
        source="github",
        actor=login,
        place=f"{repository}#{issue['number']}",
        text="\n".join(lines),
        delivery_id=event.delivery_id,
        extra={
            "repository": repository,
            "number": str(issue["number"]),
            "comment_id": str(comment["id"]),
            "pull_request": "yes" if "pull_request" in issue else "no",
        },
    )
