"""A bisection over a project's pushes for the first one where a job fails: which push to run
the job on next and how many times, and what the results so far prove. No I/O: the caller
schedules, waits and records.

Pushes are numbered oldest first, 0 to ``len - 1``; the newest is the one the job fails on
(``bad``). A push is judged from its tally of passed and failed runs of the job:

* no run failed: it passes;
* when every run on the known failing pushes failed (a permanent failure, the usual break),
  one pass proves a push passes, and it fails only if every run failed — a background
  intermittent (failing one run in ten, say) then misleads only when it fails all copies;
* when runs disagree on the failing pushes too (an intermittent regression), a push is
  judged by which failure rate its own is nearer, the failing pushes' or the passing ones',
  once it has at least ``max_copies`` runs; before that it gets more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    PASSES = "passes"
    FAILS = "fails"
    UNDECIDED = "undecided"


@dataclass
class Tally:
    """Runs of the job on one push that passed and that failed."""

    passed: int = 0
    failed: int = 0

    @property
    def runs(self) -> int:
        return self.passed + self.failed


@dataclass(frozen=True, slots=True)
class Ask:
    """Run the job ``copies`` more times on push ``push``, then record the results."""

    push: int
    copies: int


@dataclass(frozen=True, slots=True)
class Found:
    """The search ended: ``first_bad`` is the first push where the job fails, ``last_good``
    the push before it that passes; ``between`` are pushes in between where the job could
    not run (the break is in one of them or in ``first_bad``); ``sure`` is False when a
    verdict on the way came from disagreeing runs."""

    first_bad: int
    last_good: int
    between: tuple[int, ...]
    sure: bool


@dataclass(frozen=True, slots=True)
class Stopped:
    """The search cannot go on, and why."""

    reason: str
    last_good: int | None
    first_bad: int | None


PASSES_ON_BAD = "the job passes on the push it was said to fail on"
FAILS_AT_THE_END = "the job fails on the oldest push searched too: the break is earlier"


@dataclass
class Search:
    """The state of one search: what each push's runs said and where the break can be."""

    pushes: int  # how many, oldest first; the newest (pushes - 1) is where the job fails
    copies: int = 3  # runs asked of a push at first
    max_copies: int = 12  # runs of one push before disagreeing runs are judged by their rate
    good: int | None = None  # a push known to pass, if one was named
    missing: set[int] = field(default_factory=set)  # pushes where the job does not exist
    tallies: dict[int, Tally] = field(default_factory=dict)
    sure: bool = True

    def __post_init__(self) -> None:
        if self.pushes < 2:
            raise ValueError("a search needs at least two pushes")
        self.bad = self.pushes - 1

    def record(self, push: int, passed: int, failed: int) -> None:
        """Add runs of the job on ``push`` (new results, or ones the push already had)."""
        tally = self.tallies.setdefault(push, Tally())
        tally.passed += passed
        tally.failed += failed

    def next(self) -> Ask | Found | Stopped:
        """What to do next: run the job somewhere, or the end of the search."""
        newest = self.tallies.get(self.pushes - 1, Tally())
        if newest.failed == 0 and newest.runs >= self.copies:
            return Stopped(PASSES_ON_BAD, None, None)
        if newest.failed == 0 or (newest.passed == 0 and newest.runs < 2 * self.copies):
            # Twice the copies where it fails: whether it fails every time (a break) or
            # now and then (an intermittent regression) decides how the rest is judged.
            return Ask(self.pushes - 1, 2 * self.copies - newest.runs)
        self._settle()
        if self.good is None:
            oldest = min(p for p in range(self.pushes) if p not in self.missing)
            if oldest >= self.bad:
                return Stopped(FAILS_AT_THE_END, None, self.bad)
            return self._ask(oldest)
        between = [p for p in range(self.good + 1, self.bad) if p not in self.missing]
        if not between:
            skipped = tuple(range(self.good + 1, self.bad))
            return Found(self.bad, self.good, skipped, self.sure and not self.disagreed())
        return self._ask(between[len(between) // 2])

    def _settle(self) -> None:
        """Move ``good`` and ``bad`` to what the tallies prove; a failing oldest push ends
        the search in ``next`` (via ``good`` staying None)."""
        for push in sorted(self.tallies):
            verdict = self.judge(push)
            if verdict is Verdict.FAILS and push < self.bad:
                self.bad = push
            elif verdict is Verdict.PASSES and push < self.bad:
                self.good = push if self.good is None else max(self.good, push)
        if self.good is not None and self.good >= self.bad:
            self.good = None  # contradicting evidence: a later push passes; search below

    def _ask(self, push: int) -> Ask:
        """``copies`` runs in all at first; twice as many (up to ``max_copies``) while runs
        disagree and cannot yet be judged."""
        runs = self.tallies.get(push, Tally()).runs
        more = self.copies - runs if runs < self.copies else min(runs, self.max_copies - runs)
        return Ask(push, max(1, more))

    def judge(self, push: int) -> Verdict:
        """What the runs of ``push`` prove so far."""
        tally = self.tallies.get(push, Tally())
        if push == self.pushes - 1:  # where the job was seen failing: any failure confirms it
            return Verdict.FAILS if tally.failed else Verdict.UNDECIDED
        if tally.runs < self.copies and not (tally.failed and tally.passed):
            return Verdict.UNDECIDED
        if tally.failed == 0:
            return Verdict.PASSES
        if tally.passed == 0:
            return Verdict.FAILS
        if self._permanent(push):
            return Verdict.PASSES  # one pass proves it can pass: the failure is an intermittent
        if tally.runs < self.max_copies:
            return Verdict.UNDECIDED
        self.sure = False
        bad_rate, good_rate = self._rates(push)
        rate = tally.failed / tally.runs
        return Verdict.FAILS if abs(rate - bad_rate) < abs(rate - good_rate) else Verdict.PASSES

    def disagreed(self) -> bool:
        """Whether the runs of some push disagreed (the job fails intermittently)."""
        return any(t.passed and t.failed for t in self.tallies.values())

    def background(self) -> Tally:
        """Runs on the pushes known to pass, and how many of them failed anyway (an
        intermittent before the break)."""
        passing = [t for p, t in self.tallies.items() if self.good is not None and p <= self.good]
        return Tally(sum(t.passed for t in passing), sum(t.failed for t in passing))

    def by_chance(self, push: int) -> float:
        """How likely the failures of ``push`` are the intermittent's alone: its failure
        rate on the passing pushes, raised to the number of runs that failed (0: none seen)."""
        background = self.background()
        if not background.failed:
            return 0.0
        return float((background.failed / background.runs) ** self.tallies[push].failed)

    def _failing(self, but: int) -> list[Tally]:
        """Tallies of the pushes from ``bad`` on that every run failed or that are the
        named failing push, but ``but``."""
        return [t for p, t in self.tallies.items() if p >= self.bad and p != but and t.runs]

    def _permanent(self, push: int) -> bool:
        """Whether the job fails every time where it is known to fail."""
        known = self._failing(push)
        return bool(known) and all(t.passed == 0 for t in known)

    def _rates(self, push: int) -> tuple[float, float]:
        bad = self._failing(push)
        good = self.background()
        bad_rate = sum(t.failed for t in bad) / max(1, sum(t.runs for t in bad)) if bad else 1.0
        return bad_rate, good.failed / max(1, good.runs)


def most_rounds(pushes: int) -> int:
    """The rounds a search of ``pushes`` takes at most with unanimous runs: the failing push
    and the oldest push, then halving what lies between."""
    return math.ceil(math.log2(pushes)) + 2
