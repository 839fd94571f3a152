"""GitHub events as bot requests: which comments carry commands, and for whom; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gidgethub import sansio

from bot.adapters.github.checks import RETRIGGER_FAILED
from bot.core.request import Origin, Request
from grammar import GITHUB, Triggers, extract_commands
from grammar.vocabulary import REQUEST_ID

SOURCE = "github"


@dataclass(frozen=True, slots=True)
class GitHubOrigin(Origin):
    """Where on GitHub a request was made: the repository, the pull request or issue, the
    comment (to react to), the App installation, and, on a pull request, whether its head
    lives in a fork and who opened it (filled in when the head is pinned)."""

    repository: str = ""
    number: int = 0
    comment_id: int | None = None
    pull_request: bool = False
    comment_kind: str = "issues"  # "pulls" for a comment on a line of the diff
    installation: int | None = None
    fork: bool = False
    author: str = ""


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
        source=SOURCE,
        actor=login,
        place=f"{repository}#{issue['number']}",
        text="\n".join(lines),
        delivery_id=event.delivery_id,
        # The comment, whichever delivery brings it (redelivered, or sent to both an App and
        # a repository webhook): each command line of it runs once.
        message_key=f"comment:{comment['id']}",
        needs_revision=not (review or "pull_request" in issue),
        origin=GitHubOrigin(
            repository,
            int(issue["number"]),
            int(comment["id"]),
            pull_request=review or "pull_request" in issue,
            # Reactions to a comment on the diff go to the pull request's comment endpoint.
            comment_kind="pulls" if review else "issues",
            installation=installation_of(data),
        ),
    )


def installation_of(data: dict[str, Any]) -> int | None:
    """The App installation a delivery came through, if it came through one."""
    found = (data.get("installation") or {}).get("id")
    return int(found) if found is not None else None


def check_run_retrigger(event: sansio.Event, *, app_id: str | None) -> str | None:
    """The request whose failed jobs a person asked to run again from its check run (the
    check's "Re-run", or its "Retrigger failed" button), or None. Only this App's checks
    count: another App's check runs on the same commit are none of the bot's business."""
    if event.event != "check_run" or app_id is None:
        return None
    data: dict[str, Any] = event.data
    run = data.get("check_run") or {}
    if str((run.get("app") or {}).get("id")) != str(app_id):
        return None
    action = data.get("action")
    if action == "requested_action":
        if (data.get("requested_action") or {}).get("identifier") != RETRIGGER_FAILED:
            return None
    elif action != "rerequested":
        return None
    request_id = str(run.get("external_id") or "")
    return request_id if REQUEST_ID.fullmatch(request_id) else None
