"""What an adapter hands the core: a request, with where it came from (its typed origin)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as its adapter knows it; each adapter subclasses it with
    what it needs to answer there (a comment's id, an IRC nick's account, a token's tier)."""


@runtime_checkable
class ReviewedCode(Protocol):
    """An origin about code under review: a pull request, maybe from a fork."""

    @property
    def pull_request(self) -> bool: ...

    @property
    def fork(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Request:
    """A message addressed to the bot, from any place people talk.

    ``project`` and ``revision`` are the defaults a command's ``on`` may override: the
    pull request's head, or nothing (the project's latest push).
    """

    source: str  # the adapter's name: console, github, irc, http, ...
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
    origin: Origin = field(default_factory=Origin)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling a message came to: its commands, the requests they made (or carried
    on), and the command lines that failed on the bot's side (worth a retry)."""

    commands: int = 0
    made: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a request stands, for a place that shows it beside the chat (GitHub's checks)."""

    request_id: str
    revision: str  # the commit it is about
    name: str  # what was asked, short
    title: str  # where it stands, one line
    text: str  # the status card
    details_url: str  # the task group
    finished: bool = False
    failed: int = 0  # failed or exception tasks, once finished


def derived_request_id(source: str, delivery_id: str, position: int) -> str:
    """The id of the request made by the command at ``position`` of a delivery: the same
    on every attempt, so a retry finds what the first attempt made."""
    key = f"{source}\0{delivery_id}\0{position}"
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:10]
