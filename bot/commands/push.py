"""``push``: the whole push at a glance: its tasks by state, failures by suite, and what the
bot added to it."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph.materialize import task_label
from bot.reporting import group_url, treeherder_url
from bot.scheduling import find_decision
from bot.tc.groups import group_entries
from grammar import Push

STATES = ("completed", "failed", "exception", "running", "pending", "unscheduled")
SUITES_SHOWN = 8
REQUESTS_SHOWN = 5
HEADLINE = "{push}: {total} task{s}: {states}"
FAILURES = "  failures by suite: {suites}"
NO_FAILURES = "  no failures"
ADDED = "  added by {name}: {requests}"
NOTHING_ADDED = "  nothing added by {name}"
# A label's platform and build type, and its chunk: what is left is the suite.
_PLATFORM = re.compile(r"^[^/]*/(?:opt|debug|asan|tsan|ccov|pgo|shippable)-")
_CHUNK = re.compile(r"-\d+$")


def suite_of(label: str) -> str:
    """``test-linux1804-64-qr/debug-mochitest-plain-3`` → ``mochitest-plain``."""
    return _CHUNK.sub("", _PLATFORM.sub("", label))


async def push(ctx: Context, cmd: Push) -> None:
    """push [REVISION]
    The whole push at a glance: how many of its tasks are in each state, its failures by
    suite, and what the bot added to it."""
    bot = ctx.bot
    found = await find_decision(ctx, cmd.revision)
    if found is None:
        return
    project, decision = found.project, found.decision_task_id
    revision = found.revision or await bot.decisions.revision_of(decision) or ""
    states: Counter[str] = Counter()
    failing: dict[str, list[str]] = defaultdict(list)
    async for entry in group_entries(bot.clients.queue, decision):
        state = str(entry["status"]["state"])
        states[state] += 1
        if state in ("failed", "exception"):
            label = task_label(entry["task"])
            failing[suite_of(label)].append(label)
    total = sum(states.values())
    shown = [f"{states[s]} {s}" for s in STATES if states[s]]
    shown += [f"{n} {s}" for s, n in sorted(states.items()) if s not in STATES]
    where = f"{project}@{revision[:12]}" if revision else f"{project}@latest"
    lines = [
        HEADLINE.format(
            push=where, total=total, s="" if total == 1 else "s", states=", ".join(shown)
        ),
        f"  task group: {group_url(bot, decision)}",
    ]
    treeherder = treeherder_url(bot, project, revision)
    if treeherder:
        lines.append(f"  treeherder: {treeherder}")
    if failing:
        ranked = sorted(failing.items(), key=lambda item: (-len(item[1]), item[0]))
        suites = [f"{suite} ({len(labels)})" for suite, labels in ranked[:SUITES_SHOWN]]
        if len(ranked) > SUITES_SHOWN:
            suites.append(f"… {len(ranked) - SUITES_SHOWN} more")
        lines.append(FAILURES.format(suites=", ".join(suites)))
    else:
        lines.append(NO_FAILURES)
    lines.append(await _added(ctx, project, revision))
    await ctx.reply("\n".join(lines))


async def _added(ctx: Context, project: str, revision: str) -> str:
    """The bot's requests on the push, newest first."""
    name = ctx.bot.settings.name
    made = [
        r
        for r in await ctx.bot.store.recent_requests(limit=1000)
        if r.project == project and revision and r.revision == revision
    ]
    if not made:
        return NOTHING_ADDED.format(name=name)
    described = [f"`{r.id}` {r.command or r.text} ({r.state.value})" for r in made[:REQUESTS_SHOWN]]
    if len(made) > REQUESTS_SHOWN:
        described.append(f"… {len(made) - REQUESTS_SHOWN} more (`status {revision[:12]}`)")
    return ADDED.format(name=name, requests="; ".join(described))


COMMAND = Command(
    "push",
    push,
    Level.READ,
    examples=("push", "push autoland@abc123f"),
)
