"""What can go wrong between a task graph and a plan, each with a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass, field


class GraphError(ValueError):
    """The task graph itself is unusable here: malformed, truncated, cyclic, or incomplete."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one selector of a command did not resolve to a set of jobs."""

    selector: str
    message: str
    suggestions: tuple[str, ...] = ()
    shortlist: tuple[str, ...] = ()
    total: int = 0

    @property
    def ambiguous(self) -> bool:
        return bool(self.shortlist)

    def describe(self) -> str:
        """The problem in a few lines: the message, then suggestions or a numbered shortlist."""
        lines = [self.message]
        if self.suggestions:
            lines.append("Did you mean: " + ", ".join(f"`{s}`" for s in self.suggestions) + "?")
        for number, label in enumerate(self.shortlist, start=1):
            lines.append(f"  {number}. {label}")
        if self.shortlist and self.total > len(self.shortlist):
            lines.append(f"  … and {self.total - len(self.shortlist)} more")
        return "\n".join(lines)


# Problems shown in full; the rest are named in one line, up to NAMED_AT_MOST of them.
SHOWN_IN_FULL = 5
NAMED_AT_MOST = 20


@dataclass(frozen=True)
class ResolveError(Exception):
    """Some selectors matched no job, or too many to guess; the first few problems are
    explained, the rest named and counted (a reply stays a few lines long)."""

    problems: tuple[Problem, ...] = field(default=())

    @property
    def ambiguous_only(self) -> bool:
        """True when every problem is a shortlist (the user must narrow, not correct)."""
        return all(p.ambiguous for p in self.problems)

    def __str__(self) -> str:
        lines = [p.describe() for p in self.problems[:SHOWN_IN_FULL]]
        rest = self.problems[SHOWN_IN_FULL:]
        if rest:
            named = ", ".join(f"`{p.selector[:60]}`" for p in rest[:NAMED_AT_MOST])
            more = f" and {len(rest) - NAMED_AT_MOST:,} more" if len(rest) > NAMED_AT_MOST else ""
            lines.append(f"… and {len(rest):,} more that match no job as asked: {named}{more}.")
        return "\n".join(lines)
