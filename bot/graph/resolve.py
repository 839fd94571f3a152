"""Resolve the job selectors of a command to task labels, or explain why they do not."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from bot.graph.errors import SHOWN_IN_FULL, Problem, ResolveError
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
# A query's cost grows with its terms times the push's jobs: both are bounded.
MAX_QUERY_TERMS = 24
MAX_QUERY_LENGTH = 400
QUERY_TOO_BIG = (
    "`{text}…` is too big a query: at most {terms} terms and {length} characters; "
    "narrow it with fewer, longer words."
)


@dataclass(frozen=True, slots=True)
class Match:
    """The labels one selector chose, and how it chose them."""

    selector: Selector
    labels: tuple[str, ...]
    how: str
    # Of a quoted query's labels, those its fuzzy terms matched only as letters in order,
    # not as a substring (`'reftest'` matching `...-r-e-f-...-test`): likely not meant.
    loose: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolution:
    """Every selector's match, and all their labels in order without repeats."""

    matches: tuple[Match, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label for m in self.matches for label in m.labels))

    @property
    def loose(self) -> tuple[str, ...]:
        """Labels only a query's fuzzy terms matched (letters in order, not as written)."""
        strict = {label for m in self.matches for label in m.labels if label not in m.loose}
        return tuple(dict.fromkeys(x for m in self.matches for x in m.loose if x not in strict))

    @property
    def queried(self) -> bool:
        return any(isinstance(m.selector, Query) for m in self.matches)


def too_big(query: str) -> bool:
    """Whether an fzf query has more terms or characters than one is allowed."""
    return len(query) > MAX_QUERY_LENGTH or len(query.split()) > MAX_QUERY_TERMS


def by_suite(index: TaskGraphIndex, labels: Sequence[str]) -> list[tuple[str, int]]:
    """How many of ``labels`` each suite has (a test's try name, else its kind), most first."""
    counts: dict[str, int] = {}
    for label in labels:
        i = index.position[label]
        suite = index.attribute(i, "unittest_try_name") or index.attribute(i, "talos_try_name")
        name = str(suite or index.entries[i].kind or "other")
        counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _where(filters: Sequence[PlatformFilter]) -> str:
    if not filters:
        return ""
    return " for " + ", ".join(f"`{f.canonical()}`" for f in filters)


GLOB_SPECIAL = "*?["
# What separates the literal runs of a glob: wildcards and closed [...] classes.
GLOB_WILDCARDS = re.compile(r"\*|\?|\[!?\]?[^\]]*\]")


def _literal_prefix(pattern: str) -> str:
    cut = min((pattern.find(c) for c in GLOB_SPECIAL if c in pattern), default=len(pattern))
    return pattern[:cut]


def _longest_literal(pattern: str) -> str:
    return max(GLOB_WILDCARDS.split(pattern), key=len)


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
        self._suggesting = True
        self._pool: dict[str, str] | None = None

    def _labels(self, found: set[int]) -> tuple[str, ...]:
        return tuple(self.index.labels[i] for i in sorted(found))

    def candidates(
        self, selector: Selector, within: set[int] | None
    ) -> Iterator[tuple[str, set[int]]]:
        """Each way the selector can match, in the order tried, among ``within`` (None: all).

        Computed lazily: a later way is worked out only when the earlier ones found nothing.
        """
        index = self.index

        def among(found: Iterable[int]) -> set[int]:
            chosen = set(found)
            return chosen if within is None else chosen & within

        if isinstance(selector, Label):
            yield "label", among([index.position[selector.text]] if selector.text in index else [])
        elif isinstance(selector, Symbol):
            yield "symbol", among(index.by_symbol.get(selector.text, ()))
        elif isinstance(selector, Glob):
            yield "glob", self._glob(selector.pattern, within)
        elif isinstance(selector, Query):
            yield "query", self._query(selector.text, within)
        elif isinstance(selector, Name):
            text = selector.text
            yield "label", among([index.position[text]] if text in index else [])
            yield (
                "symbol",
                among([*index.by_symbol.get(text, ()), *index.by_bare_symbol.get(text, ())]),
            )
            suite = among(index.by_try_name.get(text, ()))
            if selector.chunk is not None:
                chunk = str(selector.chunk)
                suite |= {
                    i
                    for i in among(index.by_try_name.get(selector.suite, ()))
                    if str(index.attribute(i, "test_chunk")) == chunk
                }
            yield "suite", suite
            yield "kind", among(index.by_kind.get(text, ()))
            suffix = re.compile(f"[-/]{re.escape(text)}$", re.MULTILINE)
            yield "label suffix", index.find(suffix, within=within)

    def _glob(self, pattern: str, within: set[int] | None) -> set[int]:
        """fnmatch's own semantics (case-sensitive), on as few labels as can be chosen.

        A literal prefix bisects the sorted labels; otherwise the longest literal run must
        appear in a label before the pattern is tried on it.
        """
        regex = re.compile(fnmatch.translate(pattern))
        labels = self.index.labels
        prefix = _literal_prefix(pattern)
        candidates: Iterable[int]
        if prefix:
            candidates = self.index.prefixed(prefix)
            if within is not None:
                candidates = candidates & within
        else:
            pool: Iterable[int] = range(len(labels)) if within is None else within
            literal = _longest_literal(pattern)
            candidates = [i for i in pool if literal in labels[i]] if literal else pool
        return {i for i in candidates if regex.match(labels[i])}

    def _query(self, text: str, within: set[int] | None, *, exact: bool = False) -> set[int]:
        """The jobs an fzf query matches (``exact``: its fuzzy terms as substrings)."""
        chosen = within
        for group in compile_query(text):
            either: set[int] = set()
            for term in group:
                if exact and term.fuzzy:
                    term = replace(term, fuzzy=False)
                if term.prefix and not term.suffix and not term.fuzzy:
                    hits = self.index.prefixed(term.word, lower=term.ignore_case)
                    hits = hits if chosen is None else hits & chosen
                else:
                    hits = self.index.find(term.regex, lower=term.ignore_case, within=chosen)
                if term.negated:
                    base = set(range(len(self.index))) if chosen is None else chosen
                    hits = base - hits
                either |= hits
            chosen = either
        return set(range(len(self.index))) if chosen is None else chosen

    def resolve_one(self, selector: Selector) -> Match:
        if isinstance(selector, Query) and too_big(selector.text):
            message = QUERY_TOO_BIG.format(
                text=selector.text[:40], terms=MAX_QUERY_TERMS, length=MAX_QUERY_LENGTH
            )
            raise ResolveError((Problem(selector.text[:40], message),))
        if isinstance(selector, TaskId):
            raise ResolveError((Problem(selector.text, NOT_A_JOB.format(text=selector.text)),))
        for how, chosen in self.candidates(selector, self.allowed):
            if not chosen:
                continue
            explicit = isinstance(selector, Glob | Query | Label)
            if not explicit and len(chosen) > self.shortlist_limit:
                raise ResolveError((self._shortlist(selector, chosen),))
            loose: tuple[str, ...] = ()
            if isinstance(selector, Query):
                loose = self._labels(chosen - self._query(selector.text, self.allowed, exact=True))
            return Match(selector, self._labels(chosen), how, loose)
        where = _where(self.filters)
        found: set[int] = set()
        if self.allowed is not None:
            found = next((f for _, f in self.candidates(selector, None) if f), set())
        if found:
            message = FILTERED_OUT.format(
                text=selector.text,
                count=len(found),
                s="" if len(found) == 1 else "s",
                where=where.strip(),
            )
            where_it_runs = tuple(f"for {pair}" for pair in self._platforms_of(found))
            raise ResolveError((Problem(selector.text, message, where_it_runs),))
        message = NO_MATCH.format(text=selector.text, where=where)
        raise ResolveError((Problem(selector.text, message, self.suggest(selector.text)),))

    def _platforms_of(self, found: set[int], count: int = 5) -> list[str]:
        """``platform/build-type`` of some of the jobs, most common first."""
        pairs: dict[str, int] = {}
        for i in found:
            platform = self.index.attribute(i, "build_platform")
            build_type = self.index.attribute(i, "build_type")
            if platform:
                pair = f"{platform}/{build_type}" if build_type else str(platform)
                pairs[pair] = pairs.get(pair, 0) + 1
        return sorted(pairs, key=lambda p: (-pairs[p], p))[:count]

    def resolve(self, selectors: Sequence[Selector]) -> Resolution:
        """Every selector's labels; all problems together when any selector fails (only
        the first few get suggestions: the rest are only named)."""
        matches: list[Match] = []
        problems: list[Problem] = []
        for selector in selectors:
            self._suggesting = len(problems) < SHOWN_IN_FULL
            try:
                matches.append(self.resolve_one(selector))
            except ResolveError as error:
                problems.extend(error.problems)
        self._suggesting = True
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
        if not self._suggesting:
            return ()
        pool = self._suggestion_pool()
        close = difflib.get_close_matches(text.lower(), list(pool), n=count, cutoff=0.6)
        return tuple(dict.fromkeys(pool[c] for c in close))

    def _suggestion_pool(self) -> dict[str, str]:
        """What a mistyped name may have meant (lower-cased -> as written), made once."""
        if self._pool is not None:
            return self._pool
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
        self._pool = pool
        return pool
