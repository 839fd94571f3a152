"""fzf's extended-search syntax over task labels, compiled to line-anchored regexes.

Terms separated by spaces must all match; ``|`` between terms makes either do. A term is
fuzzy (its characters in order), ``'exact`` (a substring), ``^prefix``, ``suffix$``, or
``!term`` (must not match, exactly). Case is ignored unless the term has a capital
(fzf's smart case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOT_NEWLINE = "[^\\n]*"


@dataclass(frozen=True, slots=True)
class Term:
    """One fzf term as a regex over a whole label, and whether it must not match."""

    pattern: str
    flags: int
    negated: bool


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
    flags = 0 if any(c.isupper() for c in word) else re.IGNORECASE
    body = re.escape(word) if exact else NOT_NEWLINE.join(re.escape(c) for c in word)
    head = "" if prefix else NOT_NEWLINE
    tail = "" if suffix else NOT_NEWLINE
    return Term(f"{head}{body}{tail}", flags, negated)


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
