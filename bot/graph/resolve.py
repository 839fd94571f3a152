"""Resolve the job selectors of a command to task labels, or explain why they do not."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.graph.errors import Problem, ResolveError
from bot.graph.fzf import compile_query
from bot.graph.index import TaskGraphIndex
from grammar import Glob, Label, Name, PlatformFilter, Query, Selector, Symbol, TaskId

DEFAULT_SHORTLIST_LIMIT = 50
SHORTLIST_SHOWN = 10

NO_MATCH = "`{text}` matches no job{where}."
FILTERED_OUT = "`{text}` matches {count} job{s}, but none {where}."
TOO_MANY = (
    "`{text}` matches {count} jobs; name one, add `for PLATFORM`, or use a glob "
    "or a quoted query to ask for all of them."
)
NOT_A_JOB = "`{text}` is a taskId, not a job of the task graph."


@dataclass(frozen=True, slots=True)
class Match:
    """The labels one selector chose, and how it chose them."""

    selector: Selector
    labels: tuple[str, ...]
    how: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """Every selector's match, and all their labels in order without repeats."""

    matches: tuple[Match, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label for m in self.matches for label in m.labels))


def _where(filters: Sequence[PlatformFilter]) -> str:
    if not filters:
        return ""
    return " for " + ", ".join(f"`{f.canonical()}`" for f in filters)


def _glob_regex(pattern: str) -> str:
    """A shell glob (``*``, ``?``, ``[...]``, ``[!...]``) as a regex within one line."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^\\n]*")
        elif char == "?":
            out.append("[^\\n]")
        elif char == "[" and (end := pattern.find("]", i + 2)) > 0:
            inside = pattern[i + 1 : end]
            negate = inside.startswith("!")
            inside = inside[1:] if negate else inside
            inside = inside.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[{'^' if negate else ''}{inside}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


class Resolver:
    """Turns selectors into labels on one graph, under a command's platform filters."""

    def __init__(
        self,
        index: TaskGraphIndex,
        filters: Sequence[PlatformFilter] = (),
        *,
        shortlist_limit: int = DEFAULT_SHORTLIST_LIMIT,
    ) -> None:
        self.index = index
        self.filters = tuple(filters)
        self.allowed = index.filtered((f.platform, f.build_type) for f in filters)
        self.shortlist_limit = shortlist_limit

    def _narrow(self, found: Iterable[int]) -> set[int]:
        chosen = set(found)
        return chosen if self.allowed is None else chosen & self.allowed

    def _labels(self, found: set[int]) -> tuple[str, ...]:
        return tuple(self.index.labels[i] for i in sorted(found))

    def candidates(self, selector: Selector) -> Iterator[tuple[str, set[int]]]:
        """Each way the selector can match, in the order tried, unfiltered; computed lazily."""
        index = self.index
        if isinstance(selector, Label):
            yield "label", {index.position[selector.text]} if selector.text in index else set()
        elif isinstance(selector, Symbol):
            yield "symbol", set(index.by_symbol.get(selector.text, ()))
        elif isinstance(selector, Glob):
            yield "glob", index.search(_glob_regex(selector.pattern))
        elif isinstance(selector, Query):
            yield "query", self._query(selector.text)
        elif isinstance(selector, Name):
            text = selector.text
            yield "label", {index.position[text]} if text in index else set()
            yield (
                "symbol",
                set(index.by_symbol.get(text, ())) | set(index.by_bare_symbol.get(text, ())),
            )
            suite = set(index.by_try_name.get(text, ()))
            if selector.chunk is not None:
                chunk = str(selector.chunk)
                suite |= {
                    i
                    for i in index.by_try_name.get(selector.suite, ())
                    if str(index.attribute(i, "test_chunk")) == chunk
                }
            yield "suite", suite
            yield "kind", set(index.by_kind.get(text, ()))
            yield "label suffix", index.search(f"[^\\n]*[-/]{re.escape(text)}")

    def _query(self, text: str) -> set[int]:
        everything = set(range(len(self.index)))
        chosen = everything
        for group in compile_query(text):
            either: set[int] = set()
            for term in group:
                hits = self.index.search(term.pattern, term.flags)
                either |= (everything - hits) if term.negated else hits
            chosen = chosen & either
        return chosen

    def resolve_one(self, selector: Selector) -> Match:
        if isinstance(selector, TaskId):
            raise ResolveError((Problem(selector.text, NOT_A_JOB.format(text=selector.text)),))
        unfiltered = 0
        for how, found in self.candidates(selector):
            if not found:
                continue
            chosen = self._narrow(found)
            if not chosen:
                unfiltered = unfiltered or len(found)
                continue
            explicit = isinstance(selector, Glob | Query | Label)
            if not explicit and len(chosen) > self.shortlist_limit:
                raise ResolveError((self._shortlist(selector, chosen),))
            return Match(selector, self._labels(chosen), how)
        where = _where(self.filters)
        if unfiltered:
            message = FILTERED_OUT.format(
                text=selector.text,
                count=unfiltered,
                s="" if unfiltered == 1 else "s",
                where=where.strip(),
            )
        else:
            message = NO_MATCH.format(text=selector.text, where=where)
        raise ResolveError((Problem(selector.text, message, self.suggest(selector.text)),))

    def resolve(self, selectors: Sequence[Selector]) -> Resolution:
        """Every selector's labels; all problems together when any selector fails."""
        matches: list[Match] = []
        problems: list[Problem] = []
        for selector in selectors:
            try:
                matches.append(self.resolve_one(selector))
            except ResolveError as error:
                problems.extend(error.problems)
        if problems:
            raise ResolveError(tuple(problems))
        return Resolution(tuple(matches))

    def _shortlist(self, selector: Selector, chosen: set[int]) -> Problem:
        labels = sorted(self._labels(chosen), key=lambda label: (len(label), label))
        message = TOO_MANY.format(text=selector.text, count=len(chosen))
        return Problem(
            selector.text, message, shortlist=tuple(labels[:SHORTLIST_SHOWN]), total=len(chosen)
        )

    def suggest(self, text: str, count: int = 5) -> tuple[str, ...]:
        """Labels, symbols and suites most like ``text``, among jobs the filters allow."""
        index = self.index
        allowed = range(len(index)) if self.allowed is None else sorted(self.allowed)
        pool: dict[str, str] = {}
        for i in allowed:
            label = index.labels[i]
            pool.setdefault(label.rsplit("/", 1)[-1].lower(), label)
            symbol = index.symbols[i]
            if symbol:
                pool.setdefault(symbol.lower(), symbol)
            try_name = index.attribute(i, "unittest_try_name")
            if isinstance(try_name, str):
                pool.setdefault(try_name.lower(), try_name)
            kind = index.entries[i].kind
            if kind:
                pool.setdefault(kind.lower(), kind)
        close = difflib.get_close_matches(text.lower(), list(pool), n=count, cutoff=0.6)
        return tuple(dict.fromkeys(pool[c] for c in close))
