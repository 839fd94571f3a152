"""The one-regex item reader: the same items, in the same places, as the alternatives."""

from __future__ import annotations

import re

import pyparsing as pp
import pytest

from grammar.lexicon import Argument, Lexicon, Rule
from grammar.tokens import Item

ON = Rule("on", r"on(?![^\s,])", re.IGNORECASE, Argument("revision", r"[a-z0-9]+", "revision"))
FOR = Rule("for", r"for(?![^\s,])", argument=Argument("filter", r"[a-z0-9]+", "filter", many=True))
MAX = Rule(
    "max",
    r"max(?![^\s,])",
    argument=Argument("count", r"[0-9]+", "count"),
    trailer=Rule("pushes_word", r"pushes?(?![^\s,])"),
)
FLAG = Rule("flag", r"-p", argument=Argument("value", r"(?!-)\S+", None))
WORD = Rule("word", r"[a-z0-9-]+")
COMMA = Rule(None, ",")


def items(text: str) -> list[Item]:
    body = pp.ZeroOrMore(Lexicon(ON, FOR, MAX, FLAG, WORD, COMMA, name="item")) + pp.StringEnd()
    return [t for t in body.parse_with_tabs().parse_string(text) if isinstance(t, Item)]


def test_the_first_alternative_that_fits_wins_and_keeps_its_column() -> None:
    assert items("a On abc") == [
        Item("word", "a", 0),
        Item("on", "On", 2),
        Item("revision", "abc", 5),
    ]
    assert items("onward") == [Item("word", "onward", 0)]  # a keyword ends at a word's end


def test_a_missing_argument_is_an_item_where_it_should_stand() -> None:
    assert items("a on  ") == [
        Item("word", "a", 0),
        Item("on", "on", 2),
        Item("missing", "revision", 6),
    ]
    assert items("max pushes") == [
        Item("max", "max", 0),
        Item("missing", "count", 4),
        Item("pushes_word", "pushes", 4),
    ]


def test_many_arguments_follow_spaces_or_commas_and_a_dangling_comma_is_left() -> None:
    assert items("for a, b c ,") == [
        Item("for", "for", 0),
        Item("filter", "a", 4),
        Item("filter", "b", 7),
        Item("filter", "c", 9),
    ]


def test_an_optional_argument_is_simply_absent() -> None:
    assert items("-p -p x") == [Item("flag", "-p", 0), Item("flag", "-p", 3), Item("value", "x", 6)]


def test_patterns_that_would_break_the_joined_regex_are_refused() -> None:
    with pytest.raises(ValueError, match="name groups"):
        Lexicon(Rule("x", r"(?P<inner>x)"), name="bad")
    with pytest.raises(ValueError, match="case-insensitive"):
        Lexicon(Rule("x", r"x", re.DOTALL), name="bad")
