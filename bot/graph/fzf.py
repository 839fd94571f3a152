"""fzf's extended-search syntax over task labels.

Terms separated by spaces must all match; ``|`` between terms makes either do. A term is
fuzzy (its characters in order), ``'exact`` (a substring), ``^prefix``, ``suffix$``, or
``!term`` (must not match, exactly). Case is ignored unless the term has a capital
(fzf's smart case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Term:
    """One fzf term: the text, how it must occur, and whether it must not."""

    word: str
    prefix: bool
    suffix: bool
    fuzzy: bool
    ignore_case: bool
    negated: bool

    @property
    def regex(self) -> re.Pattern[str]:
        """A regex that finds the term inside one label (``^``/``$`` at its ends)."""
        if self.fuzzy:
            # Each character, then anything but the next one: the leftmost subsequence
            # match, found without backtracking.
            body = re.escape(self.word[0]) + "".join(
                f"[^\\n{re.escape(c)}]*{re.escape(c)}" for c in self.word[1:]
            )
        else:
            body = re.escape(self.word)
        head = "^" if self.prefix else ""
        tail = "$" if self.suffix else ""
        return re.compile(f"{head}{body}{tail}", re.MULTILINE)


def _term(word: str) -> Term | None:
    negated = word.startswith("!")
    if negated:
        word = word[1:]
    prefix = word.startswith("^")
    if prefix:
        word = word[1:]
    suffix = word.endswith("$") and len(word) > 1
    if suffix:
        word = word[:-1]
    exact = word.startswith("'") or negated or prefix or suffix
    word = word.lstrip("'")
    if not word:
        return None
    ignore_case = not any(c.isupper() for c in word)
    if ignore_case:
        word = word.lower()
    return Term(word, prefix, suffix, not exact, ignore_case, negated)


def compile_query(query: str) -> list[list[Term]]:
    """The query as AND-ed groups of OR-ed terms."""
    groups: list[list[Term]] = []
    pending_or = False
    for word in query.split():
        if word == "|":
            pending_or = bool(groups)
            continue
        term = _term(word)
        if term is None:
            continue
        if pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    return groups
