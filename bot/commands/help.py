"""``help``: what the bot understands."""

from __future__ import annotations

from bot.core.access import Level
from bot.core.commands import Command, Context
from grammar import Help

NOT_HERE = "`{verb}` is not a command here; `help` lists the ones that are."
TOPICS = {
    "selectors": (
        "Jobs: a label, a glob (test-*/debug-*), a symbol M(bc3), a suite mochitest-1, "
        "or a quoted fzf query 'mochitest !asan'."
    ),
    "filters": (
        "for PLATFORMS: linux64, debug, linux64/debug, windows11-64 opt ... "
        "(a platform, a build type, or both)."
    ),
    "revisions": (
        "on REVISION: 7-40 hex digits, latest, project@revision (autoland@abc123f), "
        "or a project alone."
    ),
    "times": "xN or times N: run N copies of the requested jobs (they share their dependencies).",
    "notify": (
        "--notify (or notify me) on schedule, retrigger, backfill, action and try: you are told "
        "when the request ends (a private message on IRC, a mention on GitHub and Matrix). "
        "--quiet: no progress, only the first answer and the final state."
    ),
    "examples": (
        "schedule mochitest-browser-chrome-3 for linux64 debug; retrigger failed x3; "
        "try: -b do -p linux64 -u xpcshell"
    ),
}


async def help_(ctx: Context, cmd: Help) -> None:
    """help [COMMAND]
    Lists the commands, or explains one of them with examples."""
    if cmd.topic in TOPICS:
        await ctx.reply(TOPICS[cmd.topic])
        return
    offered = [c for c in ctx.commands or () if c.offered_by(ctx.replier, ctx.request)]
    if cmd.topic is not None:
        spec = next((c for c in offered if c.verb == cmd.topic), None)
        if spec is None:
            await ctx.refuse(
                f"`{cmd.topic}` is not a command here; `help` lists the ones that are."
            )
            return
        examples = "\n".join(f"  {e}" for e in spec.examples)
        aliases = f"\nAlso: {', '.join(spec.aliases)}" if spec.aliases else ""
        await ctx.reply(f"{spec.help}{aliases}\nExamples:\n{examples}")
        return
    lines = ["Commands (`help COMMAND` for more):"]
    for spec in offered:
        lines.append(f"  {spec.usage}")
    await ctx.reply("\n".join(lines))


COMMAND = Command(
    "help",
    help_,
    Level.READ,
    examples=("help", "help schedule"),
)
