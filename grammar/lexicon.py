"""One pyparsing element that reads a command's next item with a single regex match.

A command's body is a run of items (a job, ``on REV``, ``x3``, a comma...). Written as
pyparsing alternatives, each word costs a failed match (an exception) per alternative tried
before the one that fits; a ``Lexicon`` joins the alternatives, in the same order, into one
regex of named groups, so a word costs one match. A keyword that takes an argument (``on``,
``for``, ``times``, ``depth``, ``from``, ``max``) reads it here too, and gives a ``missing``
item where it is absent, exactly as ``keyword + (argument | missing(...))`` would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyparsing as pp

from grammar.tokens import Item

_SPACES = re.compile(r"[ \t\n\r]*")
_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class Argument:
    """What follows a keyword: ``pattern`` as a ``kind`` item, else ``missing`` ``what``
    (nothing when ``what`` is None: the argument is optional); with ``many``, more of them
    may follow, each after spaces or a comma."""

    kind: str
    pattern: str
    what: str | None
    many: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One alternative: ``pattern`` as a ``kind`` item (none when ``kind`` is None: a
    separator), then its ``argument`` and an optional ``trailer`` word."""

    kind: str | None
    pattern: str
    flags: int = 0
    argument: Argument | None = None
    trailer: Rule | None = None

    def source(self) -> str:
        """The pattern with its flags written inline, to sit among others in one regex."""
        if re.compile(self.pattern).groupindex:
            raise ValueError(f"a lexicon pattern may not name groups: {self.pattern}")
        if self.flags & ~re.IGNORECASE:
            raise ValueError("a lexicon pattern may only be case-insensitive")
        return f"(?i:{self.pattern})" if self.flags & re.IGNORECASE else f"(?:{self.pattern})"


class Lexicon(pp.Token):
    """The first of ``rules`` that matches where the parser stands, as pyparsing's
    ``MatchFirst`` of them would choose it, read with one regex match."""

    def __init__(self, *rules: Rule, name: str) -> None:
        super().__init__()
        self.rules = rules
        self.combined = re.compile("|".join(f"(?P<r{i}>{r.source()})" for i, r in enumerate(rules)))
        self.arguments = {
            id(rule.argument): re.compile(rule.argument.pattern)
            for rule in rules
            if rule.argument is not None
        }
        self.trailers = {
            id(rule.trailer): re.compile(rule.trailer.source())
            for rule in rules
            if rule.trailer is not None
        }
        self.set_name(name)
        self.mayReturnEmpty = False
        self.mayIndexError = False

    def parseImpl(  # noqa: N802 - pyparsing's name
        self, instring: str, loc: int, do_actions: bool = True
    ) -> tuple[int, list[Item]]:
        found = self.combined.match(instring, loc)
        if found is None or found.lastgroup is None:
            raise pp.ParseException(instring, loc, self.errmsg, self)
        rule = self.rules[int(found.lastgroup[1:])]
        end = found.end()
        items = [] if rule.kind is None else [Item(rule.kind, found.group(), loc)]
        if rule.argument is not None:
            end = self._argument(instring, end, rule.argument, items)
        if rule.trailer is not None:
            at = _SPACES.match(instring, end).end()  # type: ignore[union-attr]
            trailer = self.trailers[id(rule.trailer)].match(instring, at)
            if trailer is not None:
                items.append(Item(rule.trailer.kind or "", trailer.group(), at))
                end = trailer.end()
        return end, items

    def _argument(self, text: str, end: int, argument: Argument, items: list[Item]) -> int:
        pattern = self.arguments[id(argument)]
        at = _SPACES.match(text, end).end()  # type: ignore[union-attr]
        value = pattern.match(text, at)
        if value is None:
            if argument.what is not None:
                items.append(Item("missing", argument.what, at))
            return end
        items.append(Item(argument.kind, value.group(), at))
        end = value.end()
        while argument.many:
            gap = _COMMA.match(text, end) or _SPACES.match(text, end)
            at = gap.end()  # type: ignore[union-attr]
            value = pattern.match(text, at)
            if value is None:
                return end
            items.append(Item(argument.kind, value.group(), at))
            end = value.end()
        return end
