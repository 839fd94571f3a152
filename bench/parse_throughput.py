"""Parse throughput: commands per second, against references measured in the same run.

Run: .venv/bin/python bench/parse_throughput.py [--seconds N] [--json PATH]

References: ``json.loads`` of each command's JSON form (a raw parse of the same
information) and ``shlex.split`` of the text (the tokenizing a naive bot would do,
and the first step of Gecko's own try-syntax parser).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Measure, add_json_option, write_json
from grammar import GITHUB, ParseError, parse_command, parse_message

CORPUS = [
    "schedule mochitest-1",
    "schedule test-linux1804-64-qr/debug-mochitest-browser-chrome-3 on autoland@abc123f",
    "schedule M(bc3), R(R4) xpcshell for linux64/debug x3 --dry-run",
    "schedule 'mochitest !asan linux64$' for windows11-64 opt",
    "schedule test-*/debug-mochitest-plain-* on abc123f0123456789",
    "retrigger failed on autoland x3",
    "retrigger abcdefghQRCdefghijklmA M(bc3) x2",
    "cancel r7f3a",
    "cancel all on try@tip",
    "status r7f3a",
    "jobs mochitest !asan for linux64",
    "confirm r7f3a",
    "help schedule",
    "try: -b do -p linux64,macosx64 -u mochitest-1[linux64,-windows10-64],xpcshell -t none",
    "try: -b o -p all -u all --rebuild 5 --setenv MOZ_LOG=cookie:5 --artifact",
    "shedule mochitest-1",  # errors are part of real traffic
    "schedule mochitest-1 x1000",
    "schedule mochitest-1 on abc12",
]
COMMENT = (
    "Thanks for the patch! The failure looks intermittent.\n\n"
    "> @taskbot schedule everything\n\n"
    "```\n@taskbot schedule nothing\n```\n"
    "@taskbot retrigger failed x3\n"
    "@taskbot schedule M(bc3) for linux64/debug\n"
    "<!-- taskbot:request:r7f3a -->\n"
)


def ours(text: str) -> object:
    try:
        return parse_command(text)
    except ParseError as error:
        return error


def as_json(text: str) -> str:
    outcome = ours(text)
    return json.dumps(outcome.to_json())  # type: ignore[union-attr]


def rate(function: Callable[[str], object], corpus: list[str], seconds: float) -> float:
    """Best of five runs of items per second over ``corpus``."""
    rates = []
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for text in corpus:
                function(text)
            count += len(corpus)
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    add_json_option(parser)
    args = parser.parse_args()
    encoded = [as_json(text) for text in CORPUS]
    ours_rate = rate(ours, CORPUS, args.seconds)
    json_rate = rate(json.loads, encoded, args.seconds)
    shlex_rate = rate(shlex.split, [t.replace("'", "") for t in CORPUS], args.seconds)
    comment_rate = rate(lambda text: parse_message(text, GITHUB), [COMMENT], args.seconds)
    mean_chars = statistics.mean(len(t) for t in CORPUS)
    print(f"corpus: {len(CORPUS)} commands, {mean_chars:.0f} characters on average")
    print(f"{'what':42} {'per second':>12} {'time vs ours':>13}")
    rows = [
        ("taskbot parse_command", ours_rate),
        ("json.loads of the same command as JSON", json_rate),
        ("shlex.split of the text", shlex_rate),
    ]
    for name, value in rows:
        print(f"{name:42} {value:12,.0f} {ours_rate / value:12.2f}x")
    label = "taskbot parse_message (GitHub comment)"
    print(f"{label:42} {comment_rate:12,.0f}   (2 commands each)")
    print(
        f"ratio: parse_command takes {json_rate / ours_rate:.1f}x the time of json.loads "
        f"and {shlex_rate / ours_rate:.1f}x that of shlex.split"
    )
    write_json(
        args.json,
        "parse_throughput",
        args,
        [
            Measure(
                "parse_command vs json.loads",
                ours_rate,
                "commands/s",
                "json.loads of the JSON form",
                json_rate,
                json_rate / ours_rate,
                "x the time",
                "<= 30",
            ),
            Measure(
                "parse_command vs shlex.split",
                ours_rate,
                "commands/s",
                "shlex.split of the text",
                shlex_rate,
                shlex_rate / ours_rate,
                "x the time",
            ),
            Measure("parse_message, GitHub comment (2 commands)", comment_rate, "comments/s"),
        ],
    )


if __name__ == "__main__":
    main()
