"""The bot's commands, one module per verb, registered by a decorator; docstring = help."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grammar.vocabulary import VERBS

if TYPE_CHECKING:
    from bot.service import Context

Handler = Callable[["Context", Any], Awaitable[None]]
MODULES = (
    "schedule",
    "retrigger",
    "cancel",
    "status",
    "jobs",
    "confirm",
    "help",
    "try_",
    "approve",
    "more",
)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A verb, the coroutine that carries it out, its help text and tested examples."""

    verb: str
    handler: Handler
    help: str
    examples: tuple[str, ...]


REGISTRY: dict[str, CommandSpec] = {}


def command(verb: str, *, examples: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``verb``; its docstring is the verb's help."""

    def register(handler: Handler) -> Handler:
        if verb not in VERBS:
            raise RuntimeError(f"`{verb}` is not a verb of the grammar")
        if verb in REGISTRY:
            raise RuntimeError(f"`{verb}` is registered twice")
        REGISTRY[verb] = CommandSpec(
            verb, handler, inspect.cleandoc(handler.__doc__ or ""), examples
        )
        return handler

    return register


def load() -> dict[str, CommandSpec]:
    """Import every command module; a verb of the grammar without a command stops start-up."""
    for module in MODULES:
        importlib.import_module(f"bot.commands.{module}")
    missing = sorted(set(VERBS) - set(REGISTRY))
    if missing:
        raise RuntimeError(f"no command implements: {', '.join(missing)}")
    return REGISTRY
