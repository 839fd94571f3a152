"""The command table: every command module, listed once; each declares its own rules."""

from __future__ import annotations

from bot.commands import (
    action,
    actions,
    approve,
    backfill,
    bisect,
    cancel,
    confirm,
    help,
    jobs,
    more,
    push,
    pushes,
    rerun,
    retrigger,
    schedule,
    status,
)
from bot.commands import try_ as try_syntax
from bot.core.commands import CommandTable

COMMANDS = CommandTable(
    [
        schedule.COMMAND,
        retrigger.COMMAND,
        rerun.COMMAND,
        cancel.COMMAND,
        status.COMMAND,
        pushes.COMMAND,
        push.COMMAND,
        actions.COMMAND,
        action.COMMAND,
        backfill.COMMAND,
        bisect.COMMAND,
        jobs.COMMAND,
        confirm.COMMAND,
        help.COMMAND,
        try_syntax.COMMAND,
        approve.COMMAND,
        more.COMMAND,
    ]
)
