"""The command table: each command's verb, handler, help, the level it needs and whether it
waits for approval on a fork; and the context a command runs in."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.limits import MessageBudget
from bot.core.replies import Replier
from bot.core.request import Request
from bot.core.runtime import Runtime
from grammar.vocabulary import VERBS


@dataclass
class Context:
    """What a command needs: the request, where to reply, the adapter it came through, the
    command table, and the bot's runtime; what it made is recorded here."""

    bot: Runtime
    request: Request
    replier: Replier
    line: str
    position: int = 0  # which command of the message
    key: str | None = None  # the command's key on every attempt (request ids derive from it)
    adapter: Adapter = field(default_factory=Adapter)
    commands: CommandTable | None = None
    made: list[str] = field(default_factory=list)  # request ids made or carried on
    refused: bool = False  # the command could not do what was asked (and said why)
    budget: MessageBudget = field(default_factory=MessageBudget)  # shared by the message
    # Whether the person may run a command on another project's push: None, or why not
    # (the bot's own check, for a command that learns its project as it runs).
    # ``Level``: what this use of the command asks at least (an action's own permission).
    authorize: Callable[[Command, str, Level], Awaitable[str | None]] | None = None

    async def reply(self, text: str) -> str:
        return await self.replier.post(text)

    async def refuse(self, text: str) -> str:
        """Say why the command cannot do what was asked; the message's reaction says so."""
        self.refused = True
        return await self.replier.post(text)


Handler = Callable[[Context, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Command:
    """One verb: its handler (whose docstring is its help), the level it needs by default
    (a project's ``permissions`` may change it), whether it runs the push's code (and so
    waits for approval on a fork), the reply ability it needs, and tested examples."""

    verb: str
    handler: Handler
    level: Level
    gated: bool = False
    examples: tuple[str, ...] = ()
    needs: type | None = None  # a reply ability (``Pages``): offered only where replies have it
    about: type | None = None  # an origin it is about (``ReviewedCode``): offered only there

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise RuntimeError(f"`{self.verb}` is not a verb of the grammar")
        if self.level < Level.READ:
            raise RuntimeError(f"`{self.verb}` must need read at least: nobody has less")

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other words for the verb, as the grammar reads them."""
        return VERBS[self.verb][1:]

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def usage(self) -> str:
        return self.help.splitlines()[0] if self.help else self.verb

    def offered_by(self, replier: Replier, request: Request | None = None) -> bool:
        """Whether this command makes sense where ``request`` was made, answered by
        ``replier``."""
        if self.needs is not None and not isinstance(replier, self.needs):
            return False
        origin = request.origin if request is not None else None
        return self.about is None or isinstance(origin, self.about)


class CommandTable:
    """Every command, by verb; a verb listed twice, or none of the grammar's, is an error."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self._by_verb: dict[str, Command] = {}
        for each in commands:
            if each.verb in self._by_verb:
                raise RuntimeError(f"`{each.verb}` is in the command table twice")
            self._by_verb[each.verb] = each

    def get(self, verb: str) -> Command | None:
        return self._by_verb.get(verb)

    def __getitem__(self, verb: str) -> Command:
        return self._by_verb[verb]

    def __contains__(self, verb: object) -> bool:
        return verb in self._by_verb

    def __iter__(self) -> Iterator[Command]:
        return iter(self._by_verb.values())

    def missing(self) -> list[str]:
        """Verbs of the grammar that no command carries out."""
        return sorted(set(VERBS) - set(self._by_verb))

    def with_commands(self, *commands: Command) -> CommandTable:
        """A copy with ``commands`` added, each replacing the command of its verb."""
        replaced = {c.verb for c in commands}
        return CommandTable([*(c for c in self if c.verb not in replaced), *commands])
