"""GitHub events as bot requests: which comments carry commands, and for whom; no I/O."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio

from bot.request import Request
from grammar import GITHUB, Triggers, extract_commands


def _command_lines(body: str, triggers: Triggers) -> list[str]:
    return [found.source for found in extract_commands(body or "", triggers)]


# Events whose comments may hold commands: on a pull request's conversation (or an issue),
# and on a line of its diff.
COMMENT_EVENTS = ("issue_comment", "pull_request_review_comment")


def comment_request(
    event: sansio.Event, *, bot_login: str, triggers: Triggers = GITHUB
) -> Request | None:
    """The request a comment event makes, or None when it makes none.

    Only ``created`` and ``edited`` comments count; comments by bots (this one included)
    never do. An edited comment runs only the command lines it did not have before, so
    fixing a typo elsewhere in it schedules nothing again.
    """
    if event.event not in COMMENT_EVENTS or event.data.get("action") not in ("created", "edited"):
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
    review = event.event == "pull_request_review_comment"
    issue = data["pull_request"] if review else data["issue"]
    return Request(
        source="github",
        actor=login,
        place=f"{repository}#{issue['number']}",
        text="\n".join(lines),
        delivery_id=event.delivery_id,
        needs_revision=not (review or "pull_request" in issue),
        extra={
            "repository": repository,
            "number": str(issue["number"]),
            "comment_id": str(comment["id"]),
            "pull_request": "yes" if review or "pull_request" in issue else "no",
            # Reactions to a comment on the diff go to the pull request's comment endpoint.
            "comment_kind": "pulls" if review else "issues",
        },
    )
