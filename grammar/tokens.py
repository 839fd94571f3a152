"""Tokens that remember where they stood, and the small element builders the grammar uses."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyparsing as pp

from grammar.vocabulary import WORD_END


@dataclass(frozen=True, slots=True)
class Item:
    """A token the grammar kept: its kind, the text as typed, and its offset in the command."""

    kind: str
    raw: str
    loc: int

    @property
    def end(self) -> int:
        return self.loc + len(self.raw)


def tagged(kind: str, expr: pp.ParserElement) -> pp.ParserElement:
    """``expr`` whose whole match becomes one ``Item`` of ``kind``."""

    def to_item(text: str, loc: int, tokens: pp.ParseResults) -> Item:
        # A compound element reports where its whitespace began, not where its token did.
        while loc < len(text) and text[loc] in " \t":
            loc += 1
        return Item(kind, str(tokens[0]), loc)

    return expr.copy().add_parse_action(to_item)


def missing(what: str) -> pp.ParserElement:
    """Matches nothing, where ``what`` should have been: the builder reports it."""

    def to_item(text: str, loc: int, tokens: pp.ParseResults) -> Item:
        return Item("missing", what, loc)

    return pp.Empty().add_parse_action(to_item).set_name(f"missing {what}")


def keyword(*words: str, name: str) -> pp.ParserElement:
    """A caseless keyword that ends at whitespace, a comma or the end of the text.

    A regex rather than ``CaselessKeyword`` so that any non-space character, not only
    ASCII identifier characters, continues a word (``on-call`` and ``oné`` are not ``on``).
    """
    return pp.Regex(keyword_pattern(*words), flags=re.IGNORECASE).set_name(name)


def keyword_pattern(*words: str) -> str:
    """The regex of ``keyword`` (to be matched ignoring case)."""
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return rf"(?:{alternation}){WORD_END}"
