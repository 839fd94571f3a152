"""A chat in the terminal: type commands, see how the bot reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from grammar import Limits, Parsed, Triggers, parse_message

PROMPT = "you> "
GREETING = (
    "taskbot console. Type a command such as `schedule mochitest-1 on abc123f` "
    "or `help`; Ctrl-D quits.\n"
    "For now the bot shows how it understood each command; scheduling comes next."
)


def console_triggers(name: str) -> Triggers:
    """In the console every line is for the bot; ``@name``, ``name:`` and ``/verb`` work too."""
    return Triggers(names=(name,), mention=True, address=True, slash=True, bang=True, direct=True)


def describe(parsed: Parsed) -> str:
    """What the bot answers to one command line."""
    if parsed.error is not None:
        return parsed.error.render()
    assert parsed.command is not None
    data = json.dumps(parsed.command.to_json(), sort_keys=True)
    return f"understood: {parsed.command.canonical()}\n{data}"


def run(lines: Iterable[str], out: TextIO, *, name: str, limits: Limits, prompt: bool) -> int:
    """Answer each line; return how many lines had errors."""
    triggers = console_triggers(name)
    errors = 0
    if prompt:
        print(GREETING, file=out)
        out.write(PROMPT)
        out.flush()
    for line in lines:
        for parsed in parse_message(line.rstrip("\n"), triggers, limits=limits):
            errors += parsed.error is not None
            print(f"taskbot> {describe(parsed)}", file=out)
        if prompt:
            out.write(PROMPT)
            out.flush()
    if prompt:
        print(file=out)
    return errors
