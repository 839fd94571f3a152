"""What an adapter hands the core: a request, with where it came from (its typed origin)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
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
    # What identifies the message itself, whichever delivery brought it (a GitHub comment's
    # id): its commands are run once, however many deliveries carry it.
    message_key: str | None = None
    origin: Origin = field(default_factory=Origin)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling a message came to: its commands, the requests they made (or carried
    on), and the command lines that failed on the bot's side (worth a retry)."""

    commands: int = 0
    made: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    limited: bool = False  # the person was over their rate: some commands were not run


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


def command_keys(request: Request, lines: Sequence[str]) -> list[str | None]:
    """What identifies each command of a message on every attempt at it: for a message
    with a key of its own, the command's line (and which of its repeats); else the
    delivery and the command's position; None for a message that cannot come again."""
    if request.message_key is not None:
        seen: Counter[str] = Counter()
        keys: list[str | None] = []
        for line in lines:
            seen[line] += 1
            keys.append(f"{request.message_key}\0{line}\0{seen[line]}")
        return keys
    if request.delivery_id is not None:
        return [delivery_key(request.delivery_id, n) for n in range(len(lines))]
    return [None] * len(lines)


def delivery_key(delivery_id: str, position: int) -> str:
    """The key of the command at ``position`` of a delivery."""
    return f"{delivery_id}\0{position}"


def derived_request_id(source: str, key: str) -> str:
    """The id of the request a command makes, from its key (``command_keys``): the same on
    every attempt, so a retry finds what the first attempt made."""
    return "r" + hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()[:10]
