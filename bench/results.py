"""Machine-readable benchmark results: what ``--json PATH`` writes, and what bench/run_all reads."""

from __future__ import annotations

import argparse
import json
import operator
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "taskbot-bench/1"
_COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def goal_met(observed: float, goal: str) -> bool:
    """Whether ``observed`` meets ``goal``, written as an operator and a number (``>= 3``)."""
    op, _, number = goal.strip().partition(" ")
    return bool(_COMPARE[op](observed, float(number)))


@dataclass(frozen=True)
class Measure:
    """One line of a benchmark's results. The goal, when the script states one, applies to
    the ratio when there is one, else to the value."""

    measure: str
    value: float
    unit: str
    reference: str | None = None
    reference_value: float | None = None
    ratio: float | None = None
    ratio_meaning: str | None = None  # how to read the ratio: "x faster", "x the time", ...
    goal: str | None = None
    met: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.goal is not None:
            observed = self.value if self.ratio is None else self.ratio
            object.__setattr__(self, "met", goal_met(observed, self.goal))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        help="also write the results as JSON to PATH (the printed output does not change)",
    )


def write_json(
    path: Path | None, benchmark: str, args: argparse.Namespace, measures: Sequence[Measure]
) -> None:
    """Write the results to ``path``; nothing when it is None (no ``--json``)."""
    if path is None:
        return
    options = {k: v for k, v in vars(args).items() if k != "json"}
    document: dict[str, Any] = {
        "format": FORMAT,
        "benchmark": benchmark,
        "options": options,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "measures": [asdict(m) for m in measures],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
