"""A chat in the terminal: type commands, see the bot schedule them and report as tasks finish."""

from __future__ import annotations

import asyncio
import getpass
import itertools
import sys
from collections.abc import Iterable
from typing import TextIO

from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.request import Request
from bot.service import Bot
from grammar import Triggers

PROMPT = "you> "
GREETING = (
    "taskbot console, on a local Taskcluster with a seeded push ({project}@{revision}).\n"
    "Try `help`, `jobs mochitest`, `schedule mochitest-browser-chrome-3 for linux64 debug`,\n"
    "`retrigger failed`, `status`. Ctrl-D quits."
)


SOURCE = "console"


class ConsoleAdapter(Adapter):
    """The terminal: every line is for the bot, and the person at it may do anything."""

    source = SOURCE
    rate_limited = False  # the person at the terminal runs the bot

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        return console_triggers(*names)

    async def level_of(self, request: Request) -> Level:
        return Level.ADMIN


class ConsoleReplier:
    """Replies printed as ``taskbot>`` lines, one after the other."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._numbers = itertools.count(1)

    async def post(self, text: str) -> str:
        self._print(text)
        return str(next(self._numbers))

    async def react(self, reaction: str) -> None:
        return None

    def _print(self, text: str) -> None:
        lines = text.splitlines() or [""]
        self.out.write("taskbot> " + lines[0] + "\n")
        for line in lines[1:]:
            self.out.write("         " + line + "\n")
        self.out.flush()


def console_triggers(*names: str) -> Triggers:
    """In the console every line is for the bot; ``@name``, ``name:`` and ``/verb`` work too."""
    return Triggers(names=names, mention=True, address=True, slash=True, bang=True, direct=True)


async def chat(bot: Bot, lines: Iterable[str], out: TextIO, *, prompt: bool, wait: float) -> None:
    """Hand each line to the bot as the local user; then wait (bounded) for tasks to finish."""
    replier = ConsoleReplier(out)
    actor = getpass.getuser()
    loop = asyncio.get_running_loop()
    iterator = iter(lines)
    while True:
        if prompt:
            out.write(PROMPT)
            out.flush()
        line = await loop.run_in_executor(None, next, iterator, None)
        if line is None:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        request = Request(source=SOURCE, actor=actor, place="console", text=text, direct=True)
        await bot.handle(request, replier)
    if prompt:
        out.write("\n")
    if not await bot.idle(wait):
        out.write(f"taskbot> (stopped waiting after {wait:.0f}s; tasks still running)\n")


def stdin_lines() -> Iterable[str]:
    return iter(sys.stdin.readline, "")
