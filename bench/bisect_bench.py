"""The culprit search against a linear backfill of the same range: rounds (waits for results)
and tasks, for chains of 16, 64 and 256 pushes, and how often it names the right push.

Run: .venv/bin/python bench/bisect_bench.py [--searches N] [--bot-chains 16,64,256]
     [--task-seconds S] [--json PATH]

Each search has its break at a random push and runs on simulated outcomes: the job fails
every time from the break on and with probability ``--flaky`` (0.1) before it. The reference
is a linear backfill of the range, as sheriffs do it by hand: 3 copies on every push, in one
round.

Then through the bot: a chain of pushes seeded in the local Taskcluster (the break halfway,
flaky 0.1), `bisect JOB` sent as a sheriff would, timed until its answer; and the linear
backfill of the same range through the bot's `backfill` (25 pushes a command, all sent in
one message), timed until every task ended. The simulated worker runs every pending task
at once for ``--task-seconds`` (1 s): a linear backfill takes one task-time of wall time
and many machines, a bisection a task-time per round and few.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from bot.culprit import Ask, Found, Search
from bot.culprit.search import most_rounds

COPIES = 3
PROJECT = "mozilla-central"
JOB = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"
BACKFILL_DEPTH = 25  # the most pushes one `backfill` goes back


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


async def through_bot(pushes: int, flaky: float, task_seconds: float) -> dict[str, float]:
    """Seconds, rounds and tasks of `bisect` on a seeded chain, and of a linear backfill of
    the same range, both through the bot; whether the search named the right push."""
    from dataclasses import replace

    from bot.adapters.console import ConsoleReplier
    from bot.core.request import Request
    from bot.core.settings import ProjectSettings
    from bot.embedded import embedded
    from bot.localtc.chain import Breakage, seed_chain
    from bot.store.sqlite import SqliteStore

    break_at = pushes // 2 + 1
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "bench.sqlite3")
        async with embedded(store=store, tasks=300, worker_seconds=task_seconds) as env:
            unbounded = ProjectSettings(
                PROJECT, confirm_threshold=100_000, max_new_tasks=100_000, bisect_tasks=100_000
            )
            env.bot.settings = replace(
                env.bot.settings,
                poll_interval=0.05,
                max_commands=100,
                projects={**env.bot.settings.projects, PROJECT: unbounded},
            )
            breakage = Breakage((JOB,), break_at=break_at, flaky=flaky, seed=pushes)
            chain = seed_chain(env.tc, pushes, tasks=300, project=PROJECT, breakage=breakage)
            assert env.worker is not None
            env.worker.decide = chain.outcome

            async def say(text: str) -> tuple[str, float]:
                out = io.StringIO()
                started = time.perf_counter()
                asked = Request("console", "sheriff", "console", text, direct=True)
                await env.bot.handle(asked, ConsoleReplier(out))
                assert await env.bot.idle(3600)
                return out.getvalue(), time.perf_counter() - started

            tip = f"{PROJECT}@{chain.pushes[-1].revision[:12]}"
            answer, bisect_seconds = await say(f"bisect {JOB} on {tip} max {pushes} pushes")
            found = re.search(r"found: #(\d+) ", answer)
            rounds = len(re.findall(r"\] round \d+:", answer))
            tasks = int(re.findall(r"(\d+) tasks? \(a backfill", answer)[-1])
            before = len(env.tc.queue.tasks)
            commands = []
            for newest in range(pushes, 1, -BACKFILL_DEPTH):
                revision = chain.pushes[newest - 1].revision  # the bot knows older ones in full
                depth = min(BACKFILL_DEPTH, newest - 1)
                commands.append(f"backfill {JOB} on {PROJECT}@{revision} depth {depth} x{COPIES}")
            _, linear_seconds = await say("\n".join(commands))
            linear_tasks = len(env.tc.queue.tasks) - before
        await store.close()
    return {
        "right": float(found is not None and int(found[1]) == break_at),
        "seconds": bisect_seconds,
        "rounds": rounds,
        "tasks": tasks,
        "linear_seconds": linear_seconds,
        "linear_tasks": linear_tasks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=500, help="searches per chain length")
    parser.add_argument("--flaky", type=float, default=0.1, help="intermittent failure rate")
    parser.add_argument(
        "--bot-chains",
        default="16,64,256",
        help="chain lengths searched through the bot on the local Taskcluster ('' for none)",
    )
    parser.add_argument(
        "--task-seconds", type=float, default=1.0, help="how long the simulated worker runs a task"
    )
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
    chains = [int(n) for n in args.bot_chains.split(",") if n.strip()]
    if chains:
        print(f"\nthrough the bot, local Taskcluster, a task runs {args.task_seconds:g} s:")
        columns = ("pushes", "right", "rounds", "tasks", "seconds", "backfill tasks", "seconds")
        print("{:>6} {:>5} {:>6} {:>6} {:>8} {:>14} {:>8}".format(*columns))
    for pushes in chains:
        got = asyncio.run(through_bot(pushes, args.flaky, args.task_seconds))
        print(
            f"{pushes:>6} {'yes' if got['right'] else 'NO':>5} {got['rounds']:>6.0f} "
            f"{got['tasks']:>6.0f} {got['seconds']:>8.1f} {got['linear_tasks']:>14.0f} "
            f"{got['linear_seconds']:>8.1f}"
        )
        measures += [
            Measure(
                f"{pushes} pushes through the bot: tasks, bisect vs backfill",
                got["tasks"],
                "tasks",
                "backfill of the range through the bot",
                got["linear_tasks"],
                got["tasks"] / got["linear_tasks"],
                "x the tasks",
                "<= 0.5",
            ),
            Measure(
                f"{pushes} pushes through the bot: wall time, bisect vs backfill",
                got["seconds"],
                "s",
                "backfill of the range through the bot",
                got["linear_seconds"],
                got["seconds"] / got["linear_seconds"],
                "x the time",
            ),
            Measure(
                f"{pushes} pushes through the bot: rounds vs ceil(log2 N) + 2",
                got["rounds"],
                "rounds",
                "ceil(log2 N) + 2",
                most_rounds(pushes),
                got["rounds"] / most_rounds(pushes),
                "x the bound",
                "<= 1",
            ),
        ]
    write_json(args.json, "bisect_bench", args, measures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
