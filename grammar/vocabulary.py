"""The words of the command language: verbs and aliases, build types, and token patterns."""

from __future__ import annotations

import re

# A word ends at whitespace, a comma, or the end of the text.
WORD_END = r"(?![^\s,])"

# Each verb with its aliases; the first word is the verb's own name.
VERBS: dict[str, tuple[str, ...]] = {
    "schedule": ("schedule", "sched", "add"),
    "retrigger": ("retrigger", "rt", "retry"),
    "rerun": ("rerun",),
    "cancel": ("cancel", "abort"),
    "status": ("status", "st"),
    "pushes": ("pushes", "pushlog"),
    "push": ("push", "overview"),
    "actions": ("actions",),
    "action": ("action",),
    "backfill": ("backfill", "bf"),
    "bisect": ("bisect", "culprit"),
    "jobs": ("jobs", "search", "find"),
    "confirm": ("confirm",),
    "help": ("help", "usage"),
    "try": ("try",),
    "approve": ("approve", "ok-to-test", "ok2test"),
    "more": ("more", "next"),
}
ALIASES: dict[str, str] = {word: verb for verb, words in VERBS.items() for word in words}

# Topics ``help`` knows besides the verbs.
HELP_TOPICS = ("selectors", "filters", "revisions", "times", "notify", "examples")

# Build types a ``for`` filter understands (Gecko's ``attributes.build_type`` and the
# collections of Treeherder: opt, debug, asan, tsan, ccov, pgo, shippable).
BUILD_TYPES = ("opt", "debug", "asan", "tsan", "ccov", "pgo", "shippable")

# Taskcluster's slugid pattern for a taskId (queue/v1/task-status.json).
TASK_ID = re.compile(r"[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]")
# taskbot's request ids: ``r`` and 4 to 16 lowercase hex digits, e.g. ``r7f3a``.
REQUEST_ID = re.compile(r"r[0-9a-f]{4,16}")
# A push: ``[project@|project:]node``; a project may be ``owner/repo``.
REVISION = re.compile(
    r"(?:(?P<project>[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)?)[@:])?(?P<node>[^@:]+)"
)
HEX_NODE = re.compile(r"[0-9a-fA-F]+")
LATEST_WORDS = ("latest", "tip")
PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)?")
# A Treeherder symbol with its group, ``GROUP(SYMBOL)``.
GROUP_SYMBOL = re.compile(
    r"(?P<group>[A-Za-z0-9][A-Za-z0-9_+.-]{0,24})\((?P<symbol>[A-Za-z0-9_+.-]{1,25})\)"
)
# Verbs that accept taskIds, which may begin with ``-`` like an option.
TASK_ID_VERBS = ("retrigger", "cancel", "action")
# Verbs whose requests are reported as they go, and so take ``--notify`` and ``--quiet``.
REPORTING_VERBS = ("schedule", "retrigger", "backfill", "bisect", "action", "try")
NOTIFY_SPELLINGS = ("--notify",)
QUIET_SPELLINGS = ("--quiet", "-q")
