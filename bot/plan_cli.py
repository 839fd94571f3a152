"""``python -m bot plan``: resolve a command against a task graph file and print the plan."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from bot.graph import (
    GraphError,
    Plan,
    ResolveError,
    Resolver,
    TaskGraphIndex,
    load_label_to_taskid,
    plan,
    select_try,
)
from bot.graph.resolve import DEFAULT_SHORTLIST_LIMIT
from grammar import Limits, ParseError, Retrigger, Schedule, Try, parse_command

EXIT_UNKNOWN = 2
EXIT_AMBIGUOUS = 3
NOT_PLANNABLE = "`{verb}` makes no plan; plan a `schedule`, `retrigger` or `try:` command."


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the command prints and the exit code it ends with."""

    stdout: str
    stderr: str
    code: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graph", required=True, type=Path, help="full-task-graph.json (or all_tasks.json)"
    )
    parser.add_argument(
        "--label-to-taskid",
        action="append",
        default=[],
        type=Path,
        help="label-to-taskid.json of the push; repeat to merge later ones (a later one wins)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--request-id", default="r0000", help="fixes the new taskIds (default r0000)"
    )
    parser.add_argument(
        "--shortlist-limit",
        type=int,
        default=DEFAULT_SHORTLIST_LIMIT,
        help="a name matching more jobs than this gets a shortlist instead of a plan",
    )
    parser.add_argument(
        "text", nargs="+", help="the command, e.g. schedule mochitest-1 for linux64"
    )


def labels_for(
    command: Schedule | Retrigger | Try, index: TaskGraphIndex, shortlist_limit: int
) -> list[str]:
    """The jobs a command asks for, by label."""
    if isinstance(command, Try):
        return select_try(index, command.options)
    resolver = Resolver(index, command.filters, shortlist_limit=shortlist_limit)
    return list(resolver.resolve(command.selectors).labels)


def describe(result: Plan) -> str:
    lines = [
        f"requested: {', '.join(result.requested) or 'nothing'}",
        f"{result.new_task_count} new task(s), {len(result.reuse)} reused",
    ]
    for label, task_id, copy in result.new_tasks():
        lines.append(f"  create {task_id}  {label}" + (f"  (copy {copy + 1})" if copy else ""))
    for label, task_id in sorted(result.reuse.items()):
        lines.append(f"  reuse  {task_id}  {label}")
    return "\n".join(lines)


def run(args: argparse.Namespace, limits: Limits) -> Outcome:
    text = " ".join(args.text)
    try:
        command = parse_command(text, limits=limits)
    except ParseError as error:
        return Outcome("", error.render(), EXIT_UNKNOWN)
    if not isinstance(command, Schedule | Retrigger | Try):
        return Outcome("", NOT_PLANNABLE.format(verb=command.verb), EXIT_UNKNOWN)
    try:
        index = TaskGraphIndex(args.graph.read_bytes(), name=args.graph.name)
        existing = load_label_to_taskid(*(p.read_bytes() for p in args.label_to_taskid))
        labels = labels_for(command, index, args.shortlist_limit)
        if not labels:
            return Outcome("", "the command selects no job of this task graph.", EXIT_UNKNOWN)
        times = command.options.rebuild if isinstance(command, Try) else command.times
        result = plan(index, labels, existing, request_id=args.request_id, times=times)
    except OSError as error:
        return Outcome("", f"cannot read {error.filename}: {error.strerror}", EXIT_UNKNOWN)
    except GraphError as error:
        return Outcome("", str(error), EXIT_UNKNOWN)
    except ResolveError as error:
        return Outcome("", str(error), EXIT_AMBIGUOUS if error.ambiguous_only else EXIT_UNKNOWN)
    if args.json:
        return Outcome(json.dumps(result.to_json(), indent=2, sort_keys=True), "", 0)
    return Outcome(describe(result), "", 0)
