"""The public entry points: one command from text, or every command in a chat message."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyparsing as pp

from grammar.build import DEFAULT_LIMITS, BuildError, Limits, build
from grammar.errors import ParseError
from grammar.extract import GITHUB, CommandLine, Triggers, extract_commands
from grammar.model import AnyCommand
from grammar.rules import tokenize
from grammar.vocabulary import ALIASES

log = logging.getLogger(__name__)

# Backticks of Markdown code spans (`mochitest-1`) are not part of a command, and any
# Unicode space (no-break, form feed, ...) separates words like a plain one. One space
# stands in for each, so columns stay where the user typed them.
_ODD_SPACES = re.compile(r"[^\S\t\n\r ]|`")


def parse_command(
    text: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    source: str | None = None,
    start: int = 0,
    line: int = 1,
) -> AnyCommand:
    """Parse one command, such as ``schedule mochitest-1 on abc123f``.

    ``source``, ``start`` and ``line`` place the command in the message it came from,
    so a ``ParseError`` points at the right column of the right line.
    Raises ``ParseError``, and nothing else, for any text it cannot accept.
    """
    source = text if source is None else source
    body = _ODD_SPACES.sub(" ", text)
    if "\n" in body or "\r" in body:
        where = min(i for i in (body.find("\n"), body.find("\r")) if i >= 0)
        raise ParseError(
            "a command takes one line; put each command on its own line.",
            source=source,
            column=start + where + 1,
            line=line,
        )
    try:
        return build(tokenize(body), limits, end=len(body.rstrip()))
    except BuildError as rejected:
        suggestion = None
        if rejected.fix is not None:
            suggestion = " ".join((source[:start] + rejected.fix.apply(text)).split())
        raise ParseError(
            rejected.message,
            source=source,
            column=start + rejected.loc + 1,
            line=line,
            length=rejected.length,
            suggestion=suggestion,
        ) from None
    except pp.ParseBaseException as exc:  # pragma: no cover - the grammar has catch-alls
        log.warning("grammar failed on %r: %s", text, exc.explain(depth=3))
        raise ParseError(
            "I could not read this command; `help` lists what I understand.",
            source=source,
            column=start + exc.loc + 1,
            line=line,
            detail=exc.explain(depth=3),
        ) from None


@dataclass(frozen=True, slots=True)
class Parsed:
    """One command line of a message and what became of it: a command or an error."""

    where: CommandLine
    command: AnyCommand | None = None
    error: ParseError | None = None


TOO_LONG = "a command is at most {limit:,} characters; this one has {count:,}."


def parse_line(where: CommandLine, *, limits: Limits = DEFAULT_LIMITS) -> Parsed:
    """One command line found in a message (``extract_commands``), parsed or rejected; one
    too long is rejected before it is read."""
    if len(where.body) > limits.max_line:
        message = TOO_LONG.format(limit=limits.max_line, count=len(where.body))
        error = ParseError(
            message, source=where.source[:200], column=where.start + 1, line=where.line
        )
        return Parsed(where, error=error)
    try:
        command = parse_command(
            where.body, limits=limits, source=where.source, start=where.start, line=where.line
        )
    except ParseError as error:
        return Parsed(where, error=error)
    return Parsed(where, command=command)


def parse_message(
    message: str, triggers: Triggers = GITHUB, *, limits: Limits = DEFAULT_LIMITS
) -> list[Parsed]:
    """Every command addressed to the bot in ``message``, each parsed or rejected."""
    return [parse_line(where, limits=limits) for where in extract_commands(message, triggers)]


def verb_of(body: str) -> str | None:
    """The verb a command line starts with (an alias read as its verb), without parsing the
    rest; None when its first word is no verb."""
    words = body.split(maxsplit=1)
    return ALIASES.get(words[0].rstrip(":").lower()) if words else None
