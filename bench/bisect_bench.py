"""The culprit search against a linear backfill of the same range: rounds (waits for results)
and tasks, for chains of 16, 64 and 256 pushes, and how often it names the right push.

Run: .venv/bin/python bench/bisect_bench.py [--searches N] [--json PATH]

Each search has its break at a random push and runs on simulated outcomes: the job fails
every time from the break on and with probability ``--flaky`` (0.1) before it. The reference
is a linear backfill of the range, as sheriffs do it by hand: 3 copies on every push, in one
round. Not yet measured: wall time through the bot on the local Taskcluster (the search is
not wired to a command yet).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.culprit import Ask, Found, Search
from bot.culprit.search import most_rounds

COPIES = 3


def one(pushes: int, break_at: int, flaky: float, rng: random.Random) -> tuple[bool, int, int]:
    """(named the right push, rounds, tasks) of one search."""
    search = Search(pushes, copies=COPIES)
    rounds = tasks = 0
    while isinstance(step := search.next(), Ask):
        rounds += 1
        tasks += step.copies
        rate = 1.0 if step.push >= break_at else flaky
        failed = sum(rng.random() < rate for _ in range(step.copies))
        search.record(step.push, step.copies - failed, failed)
    return isinstance(step, Found) and step.first_bad == break_at, rounds, tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=500, help="searches per chain length")
    parser.add_argument("--flaky", type=float, default=0.1, help="intermittent failure rate")
    add_json_option(parser)
    args = parser.parse_args()
    rng = random.Random(1)
    measures = []
    header = ("pushes", "rounds", "tasks", "linear tasks", "right", "µs/search")
    print("{:>6} {:>14} {:>14} {:>12} {:>7} {:>9}".format(*header))
    for pushes in (16, 64, 256):
        results = []
        started = time.perf_counter()
        for _ in range(args.searches):
            results.append(one(pushes, rng.randrange(1, pushes), args.flaky, rng))
        seconds = (time.perf_counter() - started) / args.searches
        right = sum(r[0] for r in results) / len(results)
        rounds = [r[1] for r in results]
        tasks = statistics.mean(r[2] for r in results)
        linear = (pushes - 1) * COPIES
        print(
            f"{pushes:>6} {statistics.mean(rounds):>6.1f} (max {max(rounds):>3}) "
            f"{tasks:>14.1f} {linear:>12} {right:>7.1%} {seconds * 1e6:>9.0f}"
        )
        measures += [
            Measure(
                f"{pushes} pushes: tasks, bisect vs linear backfill",
                tasks,
                "tasks",
                "linear backfill, 3 copies a push",
                linear,
                tasks / linear,
                "x the tasks",
                "<= 0.5",
            ),
            Measure(
                f"{pushes} pushes: most rounds vs ceil(log2 N) + 2",
                max(rounds),
                "rounds",
                "ceil(log2 N) + 2",
                most_rounds(pushes),
                max(rounds) / most_rounds(pushes),
                "x the bound",
                "<= 1",
            ),
            Measure(
                f"{pushes} pushes: share naming the right push, flaky {args.flaky}",
                right,
                "share",
                goal=">= 0.95",
            ),
        ]
    write_json(args.json, "bisect_bench", args, measures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
