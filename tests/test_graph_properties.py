"""Globs and fzf queries agree with plain, obviously-correct reference implementations."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from bot.graph import Resolver
from bot.graph.errors import ResolveError
from grammar import Glob, Query
from tests.graphs import gecko_index, translations_index

INDEXES = {"real": translations_index, "gecko": gecko_index}


def fragments(index_name: str) -> list[str]:
    labels = INDEXES[index_name]().labels
    return sorted(
        {part for label in labels[::7] for part in label.replace("/", "-").split("-") if part}
    )


def resolved(index_name: str, selector: Glob | Query) -> set[str]:
    try:
        return set(
            Resolver(INDEXES[index_name](), shortlist_limit=10**9).resolve([selector]).labels
        )
    except ResolveError:
        return set()


@st.composite
def globs(draw: st.DrawFn) -> tuple[str, str]:
    """A real label with some of its runs replaced by ``*``, ``?`` or a character class."""
    name = draw(st.sampled_from(sorted(INDEXES)))
    label = draw(st.sampled_from(INDEXES[name]().labels))
    pattern = label
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(pattern) - 1))
        end = draw(st.integers(start, min(len(pattern), start + 12)))
        piece = draw(st.sampled_from(["*", "?", "[a-m]", "[!x]*", "*-*"]))
        pattern = pattern[:start] + piece + pattern[end:]
    return name, pattern


@given(globs())
def test_globs_match_fnmatchcase(case: tuple[str, str]) -> None:
    name, pattern = case
    expected = {label for label in INDEXES[name]().labels if fnmatch.fnmatchcase(label, pattern)}
    assert resolved(name, Glob(pattern)) == expected


def term_matches(term: str, label: str) -> bool:
    """fzf's rules, written the slow and plain way."""
    negated = term.startswith("!")
    term = term.removeprefix("!")
    prefix = term.startswith("^")
    term = term.removeprefix("^")
    suffix = term.endswith("$") and len(term) > 1
    term = term.removesuffix("$") if suffix else term
    exact = term.startswith("'") or negated or prefix or suffix
    term = term.lstrip("'")
    if not term:
        return True
    if term == term.lower():
        label = label.lower()
    if prefix and suffix:
        hit = label == term
    elif prefix:
        hit = label.startswith(term)
    elif suffix:
        hit = label.endswith(term)
    elif exact:
        hit = term in label
    else:
        position = 0
        hit = True
        for char in term:
            position = label.find(char, position) + 1
            if not position:
                hit = False
                break
    return hit != negated


def query_matches(query: str, label: str) -> bool:
    groups: list[list[str]] = []
    joined = False
    for word in query.split():
        if word == "|":
            joined = bool(groups)
            continue
        if word.lstrip("!^'").rstrip("$") == "" and word not in ("$",):
            continue
        if joined:
            groups[-1].append(word)
        else:
            groups.append([word])
        joined = False
    return all(any(term_matches(t, label) for t in group) for group in groups)


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(INDEXES)))
    words = []
    for _ in range(draw(st.integers(1, 3))):
        fragment = draw(st.sampled_from(fragments(name)))
        if draw(st.booleans()):
            fragment = fragment[: draw(st.integers(1, len(fragment)))]
        if draw(st.booleans()):
            fragment = fragment.upper() if draw(st.booleans()) else fragment.capitalize()
        style = draw(st.sampled_from(["{}", "'{}", "^{}", "{}$", "!{}", "!^{}", "{} | {}"]))
        words.append(style.format(fragment, draw(st.sampled_from(fragments(name)))))
    return name, " ".join(words)


@given(queries())
def test_fzf_queries_match_the_plain_rules(case: tuple[str, str]) -> None:
    name, query = case
    expected = {label for label in INDEXES[name]().labels if query_matches(query, label)}
    assert resolved(name, Query(query)) == expected
