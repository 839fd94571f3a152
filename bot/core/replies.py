"""How replies reach people: every replier posts and reacts; optional abilities are types."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.core.request import Progress


@runtime_checkable
class Replier(Protocol):
    """How a reply reaches the person: post a message, react to theirs."""

    async def post(self, text: str) -> str:
        """Send ``text``; a reference to it (for editing it later, where that is possible)."""
        ...

    async def react(self, reaction: str) -> None:
        """Acknowledge the request (eyes, rocket, confused)."""
        ...


@runtime_checkable
class EditsInPlace(Protocol):
    """A place whose messages can be edited: a request's status card is one message, kept
    current, instead of a line per finished task."""

    async def edit(self, reference: str, text: str) -> None: ...


@runtime_checkable
class FindsCard(Protocol):
    """A place where the bot can find a request's card again when an earlier attempt posted
    it and died before recording where."""

    async def find_card(self, request_id: str) -> str | None: ...


@runtime_checkable
class ShowsProgress(Protocol):
    """A place that shows where a request stands beside the chat (GitHub's check runs)."""

    async def show_progress(self, reference: str | None, progress: Progress) -> str | None:
        """Create (``reference`` None) or update the request's progress; its reference, or
        None where none is shown."""
        ...


@runtime_checkable
class Pages(Protocol):
    """A place where long replies are sent a page at a time (IRC)."""

    async def more(self) -> bool:
        """Send the next page; False when nothing is held."""
        ...


@runtime_checkable
class Notifies(Protocol):
    """A place with a way to reach the person that notifies them more surely than a reply
    (a private message on IRC, an @-mention in a new GitHub comment); elsewhere a plain
    reply serves (Matrix replies mention the person already)."""

    async def notify(self, actor: str, text: str) -> None: ...
