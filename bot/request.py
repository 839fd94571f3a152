"""What an adapter hands the bot (a request) and how the bot answers (a replier)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """A message addressed to the bot, from any place people talk.

    ``project`` and ``revision`` are the defaults a command's ``on`` may override: the
    pull request's head, or nothing (the project's latest push).
    """

    source: str  # console, github, irc, http
    actor: str
    place: str
    text: str
    project: str | None = None
    revision: str | None = None
    delivery_id: str | None = None
    direct: bool = False  # a private message: every line is for the bot
    # The place has no push of its own (a GitHub issue): commands must name one with `on`.
    needs_revision: bool = False
    names: tuple[str, ...] = ()  # other names the bot answers to here (its IRC nick)
    # Handling it again is safe and wanted (a replica died handling it): the adapter's inbox
    # gave it to one replica at a time, and request ids derive from the delivery id.
    resumable: bool = False
    # Filled in as it is handled: the requests it made (or carried on), for the caller.
    made: list[str] = field(default_factory=list)
    # Commands that failed on the bot's side (Taskcluster down, a bug): worth a retry.
    failed: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


class Replier(Protocol):
    """How a reply reaches the person: post a message, edit it in place, react to theirs."""

    async def post(self, text: str) -> str:
        """Send ``text``; a reference for editing it later."""
        ...

    async def edit(self, reference: str, text: str) -> None: ...

    async def react(self, reaction: str) -> None:
        """Acknowledge the request (eyes, rocket, confused)."""
        ...


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a request stands, for a place that shows it beside the chat (GitHub's checks).

    A replier that can show it has ``check_run(reference, progress)``: it creates the
    check (``reference`` None) or updates it, and answers its reference (None: not shown).
    """

    request_id: str
    revision: str  # the commit it is about
    name: str  # what was asked, short
    title: str  # where it stands, one line
    text: str  # the status card
    details_url: str  # the task group
    finished: bool = False
    failed: int = 0  # failed or exception tasks, once finished
