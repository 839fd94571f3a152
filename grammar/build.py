"""Turn the grammar's items into typed commands, rejecting what is well-formed but wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyparsing as pp

from grammar import model as m
from grammar import trysyntax
from grammar.errors import Fix, nearest, one_of
from grammar.tokens import Item
from grammar.vocabulary import (
    ALIASES,
    BUILD_TYPES,
    GROUP_SYMBOL,
    HELP_TOPICS,
    HEX_NODE,
    LATEST_WORDS,
    NOTIFY_SPELLINGS,
    PROJECT_NAME,
    QUIET_SPELLINGS,
    REPORTING_VERBS,
    REQUEST_ID,
    REVISION,
    TASK_ID,
    TASK_ID_VERBS,
    VERBS,
)

# --- what users read -------------------------------------------------------------

NO_COMMAND = "no command given: say what to do, e.g. `schedule mochitest-1` or `help`."
UNKNOWN_VERB = "`{word}` is not a command; the commands are {verbs}."
REVISION_FORMS = "7 to 40 hex digits, `latest`, or `project@revision` (e.g. `autoland@abc123f`)"
MISSING = {
    "revision": "`on` needs a revision: " + REVISION_FORMS + ".",
    "filter": "`for` needs a platform or build type, e.g. `for linux64/debug`.",
    "count": "`times` needs a number, e.g. `times 3`.",
}
NOT_A_REVISION = "`{raw}` is not a revision: use " + REVISION_FORMS + "."
BAD_HEX_LENGTH = "a revision has 7 to 40 hex digits; `{node}` has {count}."
BAD_HEX_DIGIT = "`{node}` is not a revision: `{char}` is not a hex digit."
LOOKS_LIKE_REVISION = "`{raw}` looks like a revision, not a job: put `on` before it."
BAD_SYMBOL = "`{raw}` is not a Treeherder symbol: write GROUP(SYMBOL), like `M(bc3)`."
BAD_BUILD_TYPE = "`{raw}` is not a build type; the build types are {types}."
BAD_PAIR = "`{raw}` is not PLATFORM/BUILD-TYPE, like `linux64/debug`."
TIMES_TOO_LOW = "`{raw}`: the count must be at least 1."
TIMES_TOO_HIGH = "`{raw}`: at most {limit} copies per request."
TWICE = "`{word}` repeats what column {column} already says; keep one."
UNKNOWN_OPTION = "`{raw}` is not an option of `{verb}`; it takes {options}."
NO_OPTIONS = "`{verb}` takes no options, so `{raw}` means nothing here."
UNTERMINATED = "this quote is never closed; end the query with {quote}."
EMPTY_QUERY = "the quoted query is empty; put search words between the quotes."
UNEXPECTED = "`{raw}` does not fit here: {usage}"
NEEDS_JOBS = (
    "`{verb}` needs at least one job: a label, a symbol like `M(bc3)`, "
    "a suite like `mochitest-1`, a glob, or a quoted query."
)
NEEDS_CANCEL_TARGET = "`cancel` needs what to cancel: a request id (`r7f3a`), a taskId, or `all`."
ALL_AND_TARGETS = "`cancel all` cancels everything; leave out `{raw}` or `all`."
NOT_A_TARGET = "`{raw}` is not a request id (like `r7f3a`) or a taskId."
PUSHES_COUNT = "`pushes` lists 1 to {limit} pushes, not `{raw}`."
RERUN_NEEDS_TASKS = (
    "`rerun` needs the taskIds of the tasks to run again (as they are, same taskId), e.g. "
    "`rerun fuCPrKG2T62-4YH1tWYa7Q`; to run jobs again as new tasks, `retrigger` them."
)
RERUN_NOT_A_TASK = (
    "`{raw}` is not a taskId; `rerun` takes taskIds (22 characters, like `fuCPrKG2T62-4YH1tWYa7Q`)."
)
RERUN_A_JOB = " To run a job again by its name, `retrigger {raw}`."
FAILED_OR_EXCEPTION = (
    "`failed` already takes the jobs that ended in an exception; `exception` alone takes "
    "only those: keep one."
)
NOT_A_REQUEST_ID = "`{raw}` is not a request id; request ids look like `r7f3a`."
CONFIRM_NEEDS_ID = "`confirm` needs the request id from the preview, e.g. `confirm r7f3a`."
UNKNOWN_TOPIC = "there is no help on `{raw}`; ask about {topics}."
BOTH_REQUEST_AND_REVISION = "ask for a request or a revision, not both."
BOTH_TASK_AND_REVISION = "ask for the actions of a task or of a push, not both."
TRY_NEEDS_BUILDS = "try syntax selects nothing without `-b` (o, d or do) or `-j`: add `-b do`."
TRY_BAD_BUILD = "`-b` takes `o` (opt), `d` (debug) or both (`do`), not `{raw}`."
TRY_BAD_NUMBER = "`{flag}` takes a whole number from 1 to {limit}, not `{raw}`."
TRY_BAD_SETENV = "`--setenv` takes NAME=VALUE, not `{raw}`."
TRY_BAD_TESTS = (
    "`{flag}` could not be read at `{found}`: "
    "write tests like `mochitest-1[linux64,-windows10-64],xpcshell`."
)
TRY_UNKNOWN_OPTION = "`{raw}` is not a try option."
TRY_MISSING_VALUE = "`{name}` needs a value."
TRY_ALL_WITH_OTHERS = "`-j` takes `all`, `none` or a list of jobs, not a mix."

USAGE = {
    "schedule": "schedule JOBS [on REVISION] [for PLATFORMS] [xN] [--dry-run]",
    "retrigger": (
        "retrigger JOBS|TASKIDS|failed|exception [on REVISION] [for PLATFORMS] [xN] [--dry-run]"
    ),
    "rerun": "rerun TASKIDS",
    "cancel": "cancel REQUEST-ID|TASKID|all [on REVISION]",
    "status": "status [REQUEST-ID|REVISION]",
    "pushes": "pushes [N] [on PROJECT|REVISION]",
    "push": "push [REVISION]",
    "actions": "actions [on REVISION|TASKID]",
    "action": "action NAME [on TASKID|JOB] [on REVISION] [key=value ...|{json}] [--dry-run]",
    "backfill": "backfill JOB [on REVISION] [depth N] [for PLATFORMS] [xN] [--dry-run]",
    "bisect": "bisect JOB [on BAD] [from GOOD] [xN] [max P pushes] [--dry-run]",
    "jobs": "jobs [QUERY] [on REVISION] [for PLATFORMS]",
    "confirm": "confirm REQUEST-ID",
    "help": "help [COMMAND]",
    "try": "try: -b do -p PLATFORMS -u TESTS [--rebuild N] [on REVISION]",
    "approve": "approve [REVISION]",
    "more": "more",
}
DRY_RUN_SPELLINGS = ("--dry-run", "--preview")
REPORT_OPTIONS = "`--dry-run`, `--notify` (or `notify me`) and `--quiet`"
NOT_REPORTED = (
    "`{raw}` is for commands whose tasks are reported as they run ({verbs}); `{verb}` "
    "answers at once."
)
DEPTH_NEEDS_COUNT = "`depth` needs a number of pushes, e.g. `depth 5`."
DEPTH_RANGE = "`depth` is 1 to {limit} pushes, not `{raw}`."
BACKFILL_NEEDS_JOBS = (
    "`backfill` needs the job to run on earlier pushes, e.g. `backfill M(bc3) on abc123f`."
)
ACTION_NEEDS_NAME = (
    "`action` needs the name of one of the push's actions, e.g. "
    "`action confirm-failures on fuCPrKG2T62-4YH1tWYa7Q`; `actions` lists them."
)
ACTION_NAME = "`{raw}` is not an action name (letters, digits and `-`, as actions.json names them)."
ACTION_ONE_TARGET = "an action acts on one task: `{raw}` is a second one."
ACTION_BAD_JSON = "the action's input is not a JSON object: {error}."
ACTION_BAD_VALUE = '`{key}`: {error}; quote a text with spaces, e.g. `{key}="a b"`.'
ACTION_FIELD_TWICE = "`{key}` is given twice; keep one."
ACTION_BOTH_INPUTS = "give the input as key=value fields or as one JSON object, not both."
ACTION_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
ACTION_ON_WHAT = (
    "`on` names what the action acts on (a taskId or a job) or its push (a revision), not `{raw}`."
)
ACTION_OPEN = "this {what} is never closed; the action's input must end it."
ACTION_TOO_DEEP = "the action's input nests lists and objects more than {limit} deep."
BISECT_NEEDS_JOB = (
    "`bisect` needs the job that started failing, e.g. `bisect M(bc3)` or "
    "`bisect mochitest-1 on abc123f`."
)
BISECT_ONE_JOB = "`bisect` follows one job at a time; `{raw}` is a second one."
FROM_NEEDS_REVISION = "`from` needs the push where the job still passes: " + REVISION_FORMS + "."
MAX_NEEDS_COUNT = "`max` needs a number of pushes, e.g. `max 32 pushes`."
MAX_PUSHES_RANGE = "`max` is 2 to {limit} pushes, not `{raw}`."
BISECT_TIMES_RANGE = "a bisection runs the job 1 to {limit} times per push, not `{raw}`."
MAX_BISECT_PUSHES = 1000
MAX_BISECT_COPIES = 12
MAX_INPUT_DEPTH = 20
MAX_DEPTH = 25


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds a deployment sets on what one command may ask for."""

    max_times: int = 20
    # The longest command line read; a longer one is refused before any parsing (GitHub's
    # comments hold at most 65,536 characters, so this bounds the work, not real use).
    max_line: int = 100_000


DEFAULT_LIMITS = Limits()


class BuildError(Exception):
    """A command that parsed but cannot stand; ``loc`` and ``length`` are in the command."""

    def __init__(self, message: str, loc: int, length: int = 1, fix: Fix | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.length = length
        self.fix = fix

    @classmethod
    def at(cls, item: Item, message: str, fix: Fix | None = None) -> BuildError:
        return cls(message, item.loc, len(item.raw), fix)


# --- single values ----------------------------------------------------------------


def parse_revision(item: Item) -> m.Revision:
    """``abc123f``, ``autoland@abc123f``, ``autoland:tip``, ``latest`` or ``autoland``."""
    match = REVISION.fullmatch(item.raw)
    if not match:
        raise BuildError.at(item, NOT_A_REVISION.format(raw=item.raw))
    project, node = match["project"], match["node"]
    if node.lower() in LATEST_WORDS:
        return m.Revision(None, project)
    if HEX_NODE.fullmatch(node):
        if 7 <= len(node) <= 40:
            return m.Revision(node.lower(), project)
        raise BuildError.at(item, BAD_HEX_LENGTH.format(node=node, count=len(node)))
    if project is None and PROJECT_NAME.fullmatch(node) and not _mistyped_hash(node):
        return m.Revision(None, node)  # ``on autoland``: the project's latest push
    bad = next((c for c in node if c not in "0123456789abcdefABCDEF"), node[0])
    raise BuildError.at(item, BAD_HEX_DIGIT.format(node=node, char=bad))


def _mistyped_hash(word: str) -> bool:
    """A word of hex digits but one, with a digit in it: a hash with a typo, not a project."""
    non_hex = sum(c not in "0123456789abcdefABCDEF" for c in word)
    return len(word) >= 7 and non_hex <= 1 and any(c.isdigit() for c in word)


def _looks_like_revision(word: str) -> bool:
    return (
        7 <= len(word) <= 40 and bool(HEX_NODE.fullmatch(word)) and any(c.isdigit() for c in word)
    )


def parse_filter(item: Item) -> m.PlatformFilter:
    """``linux64``, ``debug`` or ``linux64/debug``."""
    raw = item.raw
    if "/" in raw:
        platform, _, build = raw.rpartition("/")
        if not platform or not build or "/" in platform:
            raise BuildError.at(item, BAD_PAIR.format(raw=raw))
        if build.lower() not in BUILD_TYPES:
            guess = nearest(build, BUILD_TYPES)
            start = item.loc + len(platform) + 1
            fix = Fix(start, item.end, guess) if guess else None
            raise BuildError(
                BAD_BUILD_TYPE.format(raw=build, types=one_of(BUILD_TYPES)), start, len(build), fix
            )
        return m.PlatformFilter(platform, build.lower())
    if raw.lower() in BUILD_TYPES:
        return m.PlatformFilter(None, raw.lower())
    if not any(c.isdigit() for c in raw):
        guess = nearest(raw, BUILD_TYPES, cutoff=0.75)
        if guess:
            raise BuildError.at(
                item,
                BAD_BUILD_TYPE.format(raw=raw, types=one_of(BUILD_TYPES)),
                Fix(item.loc, item.end, guess),
            )
    return m.PlatformFilter(raw, None)


def classify(item: Item, *, task_ids: bool = False) -> m.Selector:
    """Decide which kind of selector a word is."""
    raw = item.raw
    if item.kind == "query":
        inner = raw[1:-1]
        text = re.sub(r"\\(.)", r"\1", inner) if raw[0] in "\"'" else inner
        if not text.strip():
            raise BuildError.at(item, EMPTY_QUERY)
        return m.Query(" ".join(text.split()))
    if item.kind == "unterminated":
        return _unterminated(item)
    if task_ids and TASK_ID.fullmatch(raw):
        return m.TaskId(raw)
    if _looks_like_revision(raw):
        raise BuildError.at(
            item, LOOKS_LIKE_REVISION.format(raw=raw), Fix(item.loc, item.loc, "on ")
        )
    if any(c in m.GLOB_CHARS for c in raw):
        return m.Glob(raw)
    if "(" in raw or ")" in raw:
        match = GROUP_SYMBOL.fullmatch(raw)
        if not match:
            raise BuildError.at(item, BAD_SYMBOL.format(raw=raw))
        return m.Symbol(match["group"], match["symbol"])
    if "/" in raw:
        return m.Label(raw)
    return m.Name(raw)


CLOSING_QUOTE = {'"': '"', "'": "'", "“": "”", "‘": "’"}


def _unterminated(item: Item) -> m.Query:
    quote = CLOSING_QUOTE.get(item.raw[0], item.raw[0])
    raise BuildError(UNTERMINATED.format(quote=quote), item.loc, 1, Fix(item.end, item.end, quote))


# --- clauses shared by several verbs ----------------------------------------------------


class Builder:
    """Walks a command's items in order, collecting the shared clauses as it goes."""

    def __init__(self, verb: str, items: list[Item], limits: Limits, end: int) -> None:
        self.verb = verb
        self.items = items
        self.limits = limits
        self.pos = 0
        self.seen: dict[str, Item] = {}
        self.revision: m.Revision | None = None
        self.filters: list[m.PlatformFilter] = []
        self.times = 1
        self.dry_run = False
        self.notify = False
        self.quiet = False
        self.end = end  # where the command's last token ends

    def __iter__(self) -> Builder:
        return self

    def __next__(self) -> Item:
        if self.pos >= len(self.items):
            raise StopIteration
        item = self.items[self.pos]
        self.pos += 1
        return item

    def peek(self) -> Item | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def once(self, item: Item, word: str | None = None) -> None:
        """BuildError a clause given a second time."""
        key = word or item.kind
        first = self.seen.get(key)
        if first is not None:
            raise BuildError.at(item, TWICE.format(word=item.raw, column=first.loc + 1))
        self.seen[key] = item

    def value(self, keyword: Item, missing: str) -> Item:
        """The item after ``keyword`` (said once), or a BuildError saying ``missing``."""
        self.once(keyword)
        value = next(self)
        if value.kind == "missing":
            raise BuildError(missing, value.loc, 1)
        return value

    def argument(self, keyword: Item) -> Item:
        """The item after ``keyword``; a ``missing`` one becomes a clear rejection."""
        item = next(self)
        if item.kind == "missing":
            following = self.peek()
            message = MISSING[item.raw]
            if following is not None:
                message += f" Found `{following.raw}`."
            raise BuildError(message, item.loc if following is None else following.loc, 1)
        return item

    def clause(self, item: Item) -> bool:
        """Take ``item`` if it opens a shared clause; tell whether it did."""
        if item.kind == "on":
            self.once(item, "on")
            self.revision = parse_revision(self.argument(item))
        elif item.kind == "for":
            self.once(item, "for")
            self.argument(item)
            self.pos -= 1
            while (nxt := self.peek()) is not None and nxt.kind == "filter":
                self.filters.append(parse_filter(next(self)))
        elif item.kind in ("times", "times_word"):
            self.once(item, "times")
            self.times = self.count(item)
        elif item.kind == "dry_run":
            self.once(item, "dry_run")
            self.dry_run = True
        elif item.kind == "option" and self.verb in TASK_ID_VERBS and TASK_ID.fullmatch(item.raw):
            return False  # a taskId that happens to start with "-"
        elif item.kind == "notify" or (
            item.kind == "option" and _dashed(item.raw) in NOTIFY_SPELLINGS
        ):
            self.reported(item)
            self.once(item, "notify")
            self.notify = True
        elif item.kind == "option" and _dashed(item.raw) in QUIET_SPELLINGS:
            self.reported(item)
            self.once(item, "quiet")
            self.quiet = True
        elif item.kind == "option":
            reported = self.verb in REPORTING_VERBS
            spellings = DRY_RUN_SPELLINGS + ((*NOTIFY_SPELLINGS, "--quiet") if reported else ())
            guess = nearest(item.raw, spellings)
            fix = Fix(item.loc, item.end, guess) if guess else None
            options = REPORT_OPTIONS if reported else "`--dry-run`"
            message = UNKNOWN_OPTION.format(raw=item.raw, verb=self.verb, options=options)
            raise BuildError.at(item, message, fix)
        else:
            return False
        return True

    def reported(self, item: Item) -> None:
        """BuildError ``--notify``/``--quiet`` on a command that answers at once."""
        if self.verb not in REPORTING_VERBS:
            verbs = ", ".join(f"`{v}`" for v in REPORTING_VERBS)
            raise BuildError.at(
                item, NOT_REPORTED.format(raw=item.raw, verbs=verbs, verb=self.verb)
            )

    def count(self, item: Item) -> int:
        if item.kind == "times":
            where, value = item, int(item.raw[1:])
        else:
            where = self.argument(item)
            value = int(where.raw)
        raw = item.raw if item is where else f"{item.raw} {where.raw}"
        span_end = where.end
        if value < 1:
            fix = Fix(item.loc, span_end, "")  # one copy is what no count asks for
            raise BuildError(TIMES_TOO_LOW.format(raw=raw), item.loc, span_end - item.loc, fix)
        if value > self.limits.max_times:
            limit = self.limits.max_times
            fix = Fix(item.loc, span_end, f"x{limit}")
            raise BuildError(
                TIMES_TOO_HIGH.format(raw=raw, limit=limit), item.loc, span_end - item.loc, fix
            )
        return value

    def platform_filters(self) -> tuple[m.PlatformFilter, ...]:
        """Pairs as given; lone platforms and build types combined with each other."""
        pairs = [f for f in self.filters if f.platform and f.build_type]
        platforms: list[str | None] = [
            f.platform for f in self.filters if f.platform and not f.build_type
        ]
        builds: list[str | None] = [
            f.build_type for f in self.filters if f.build_type and not f.platform
        ]
        crossed: list[m.PlatformFilter] = []
        if platforms or builds:
            crossed = [
                m.PlatformFilter(p, b) for p in (platforms or [None]) for b in (builds or [None])
            ]
        return tuple(dict.fromkeys(pairs + crossed))

    def unexpected(self, item: Item) -> BuildError:
        if item.kind == "unterminated":
            _unterminated(item)
        if item.kind == "option":
            return BuildError.at(item, NO_OPTIONS.format(verb=self.verb, raw=item.raw))
        return BuildError.at(item, UNEXPECTED.format(raw=item.raw, usage=f"`{USAGE[self.verb]}`."))


# --- verbs ------------------------------------------------------------------------------


def build_schedule(b: Builder) -> m.Schedule:
    selectors = []
    for item in b:
        if b.clause(item):
            continue
        if item.kind in ("word", "query", "unterminated"):
            selectors.append(classify(item))
        else:
            raise b.unexpected(item)
    if not selectors:
        raise BuildError(NEEDS_JOBS.format(verb="schedule"), b.end, 1)
    return m.Schedule(
        tuple(dict.fromkeys(selectors)),
        b.revision,
        b.platform_filters(),
        b.times,
        b.dry_run,
        notify=b.notify,
        quiet=b.quiet,
    )


def build_retrigger(b: Builder) -> m.Retrigger:
    selectors = []
    failed = exception = False
    for item in b:
        if b.clause(item):
            continue
        if item.kind in ("failed", "exception") and (failed or exception):
            if (item.kind == "failed") == failed:
                b.once(item)  # the same word twice: said so as for any clause
            raise BuildError.at(item, FAILED_OR_EXCEPTION)
        if item.kind == "failed":
            b.once(item)
            failed = True
        elif item.kind == "exception":
            b.once(item)
            exception = True
        elif item.kind in ("word", "query", "unterminated", "option"):
            selectors.append(classify(item, task_ids=True))
        else:
            raise b.unexpected(item)
    if not selectors and not failed and not exception:
        raise BuildError(
            NEEDS_JOBS.format(verb="retrigger") + " Or `retrigger failed`, `retrigger exception`.",
            b.end,
            1,
        )
    return m.Retrigger(
        tuple(dict.fromkeys(selectors)),
        failed,
        b.revision,
        b.platform_filters(),
        b.times,
        b.dry_run,
        exception=exception,
        notify=b.notify,
        quiet=b.quiet,
    )


def _dashed(raw: str) -> str:
    """An option as typed, with the dash a chat client made of ``--`` put back."""
    return re.sub(r"^[—–]", "--", raw.lower())


def build_backfill(b: Builder) -> m.Backfill:
    selectors = []
    depth = m.DEFAULT_DEPTH
    for item in b:
        if b.clause(item):
            continue
        if item.kind == "depth":
            value = b.value(item, DEPTH_NEEDS_COUNT)
            depth = int(value.raw)
            if not 1 <= depth <= MAX_DEPTH:
                raise BuildError.at(value, DEPTH_RANGE.format(limit=MAX_DEPTH, raw=value.raw))
        elif item.kind in ("word", "query", "unterminated"):
            selectors.append(classify(item))
        else:
            raise b.unexpected(item)
    if not selectors:
        raise BuildError(BACKFILL_NEEDS_JOBS, b.end, 1)
    return m.Backfill(
        tuple(dict.fromkeys(selectors)),
        b.revision,
        depth,
        b.platform_filters(),
        b.times,
        b.dry_run,
        notify=b.notify,
        quiet=b.quiet,
    )


def build_bisect(b: Builder) -> m.Bisect:
    selectors: list[m.Selector] = []
    good: m.Revision | None = None
    max_pushes: int | None = None
    for item in b:
        if b.clause(item):
            continue
        if item.kind == "from":
            good = parse_revision(b.value(item, FROM_NEEDS_REVISION))
        elif item.kind == "max":
            value = b.value(item, MAX_NEEDS_COUNT)
            max_pushes = int(value.raw)
            if not 2 <= max_pushes <= MAX_BISECT_PUSHES:
                limit = MAX_BISECT_PUSHES
                raise BuildError.at(value, MAX_PUSHES_RANGE.format(limit=limit, raw=value.raw))
            if (following := b.peek()) is not None and following.kind == "pushes_word":
                next(b)
        elif item.kind in ("word", "query", "unterminated"):
            if selectors:
                raise BuildError.at(item, BISECT_ONE_JOB.format(raw=item.raw))
            selectors.append(classify(item))
        else:
            raise b.unexpected(item)
    if not selectors:
        raise BuildError(BISECT_NEEDS_JOB, b.end, 1)
    copies = b.seen.get("times")  # where `xN` (or `times N`) was written, if it was
    if copies is not None and b.times > MAX_BISECT_COPIES:
        raw = copies.raw
        fix = Fix(copies.loc, copies.end, f"x{MAX_BISECT_COPIES}")
        message = BISECT_TIMES_RANGE.format(limit=MAX_BISECT_COPIES, raw=raw)
        raise BuildError(message, copies.loc, len(raw), fix)
    return m.Bisect(
        tuple(selectors),
        b.revision,
        good,
        b.platform_filters(),
        b.times if copies is not None else m.DEFAULT_COPIES,
        max_pushes,
        b.dry_run,
        notify=b.notify,
        quiet=b.quiet,
    )


def build_action(b: Builder) -> m.Action:
    name: str | None = None
    task: m.TaskId | None = None
    job: m.Selector | None = None
    target: Item | None = None
    fields: dict[str, Any] = {}
    document: dict[str, Any] | None = None
    for item in b:
        if name is None and item.kind == "word":
            if not ACTION_NAME_PATTERN.fullmatch(item.raw):
                raise BuildError.at(item, ACTION_NAME.format(raw=item.raw))
            name = item.raw
            continue
        if item.kind == "on":
            argument = b.argument(item)
            if argument.kind == "query":
                item = argument  # `on "quoted query"`: a job
            elif (argument.raw[:1] in "-{[\"'“‘" and not TASK_ID.fullmatch(argument.raw)) or (
                "=" in argument.raw
            ):
                raise BuildError.at(argument, ACTION_ON_WHAT.format(raw=argument.raw))
            elif _names_a_push(argument) or (target is not None and b.revision is None):
                b.once(item, "on")
                b.revision = parse_revision(argument)
                continue
            else:
                item = Item("word", argument.raw, argument.loc)  # `on TASKID|JOB`: its target
        if item.kind == "open_document" and item.raw.startswith("["):
            raise BuildError.at(item, ACTION_BAD_JSON.format(error="a list is not one"))
        if item.kind in ("open_field", "open_document"):
            what = "`{`" if item.kind == "open_document" else "quote"
            raise BuildError.at(item, ACTION_OPEN.format(what=what))
        if item.kind == "word" and item.raw[:1] in "[{":
            raise BuildError.at(item, ACTION_BAD_JSON.format(error=f"`{item.raw}` is not one"))
        if item.kind == "field":
            key, _, value = item.raw.partition("=")
            if key in fields:
                raise BuildError.at(item, ACTION_FIELD_TWICE.format(key=key))
            fields[key] = _field_value(item, key, value)
        elif item.kind == "document":
            if document is not None:
                raise BuildError.at(item, ACTION_BAD_JSON.format(error="give one object"))
            document = _document(item)
        elif item.kind in ("word", "query", "unterminated", "option") and (
            item.kind != "option" or TASK_ID.fullmatch(item.raw)
        ):
            if target is not None:
                raise BuildError.at(item, ACTION_ONE_TARGET.format(raw=item.raw))
            target = item
            if TASK_ID.fullmatch(item.raw):
                task = m.TaskId(item.raw)
            else:
                job = classify(item)
        elif not b.clause(item):
            raise b.unexpected(item)
    if name is None:
        raise BuildError(ACTION_NEEDS_NAME, b.end, 1)
    if fields and document is not None:
        raise BuildError(ACTION_BOTH_INPUTS, b.end, 1)
    given = document if document is not None else fields
    if _depth(given) > MAX_INPUT_DEPTH:
        raise BuildError(ACTION_TOO_DEEP.format(limit=MAX_INPUT_DEPTH), b.end, 1)
    return m.Action(
        name,
        task,
        job,
        b.revision,
        json.dumps(given, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        b.dry_run,
        notify=b.notify,
        quiet=b.quiet,
    )


def _names_a_push(item: Item) -> bool:
    """Whether ``on`` names a push (hex, ``latest``, ``project@node``) rather than the task
    an action acts on (a taskId, or a job: a bare word is a job here, not a project)."""
    if TASK_ID.fullmatch(item.raw):
        return False
    match = REVISION.fullmatch(item.raw)
    node = match["node"] if match else ""
    named = bool(match and match["project"]) or node.lower() in LATEST_WORDS
    return named or bool(HEX_NODE.fullmatch(node) and len(node) >= 7)


def _field_value(item: Item, key: str, value: str) -> Any:
    """A field's value: JSON where it reads as JSON (numbers, true, lists), quotes
    removed, else the text as typed."""
    if value[:1] in ("'", '"') and len(value) >= 2 and value[-1] == value[0]:
        inner = value[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if value[0] == '"' else inner
    if value.startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            message = ACTION_BAD_VALUE.format(key=key, error=error.msg)
            raise BuildError(message, item.loc + len(key) + 1 + error.pos, 1) from None
        except RecursionError:
            raise BuildError.at(item, ACTION_BAD_VALUE.format(key=key, error="too deep")) from None
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (without recursion: any depth)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, dict):
            stack += [(v, level + 1) for v in current.values()]
        elif isinstance(current, list):
            stack += [(v, level + 1) for v in current]
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (two of one key: which is meant?)."""
    made: dict[str, Any] = {}
    for key, value in pairs:
        if key in made:
            raise ValueError(ACTION_FIELD_TWICE.format(key=key))
        made[key] = value
    return made


def _document(item: Item) -> dict[str, Any]:
    try:
        parsed = json.loads(item.raw, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        message = ACTION_BAD_JSON.format(error=error.msg)
        raise BuildError(message, item.loc + error.pos, 1) from None
    except RecursionError:
        raise BuildError.at(item, ACTION_BAD_JSON.format(error="nested too deeply")) from None
    except ValueError as error:  # a key given twice
        raise BuildError.at(item, str(error)) from None
    if not isinstance(parsed, dict):
        raise BuildError.at(item, ACTION_BAD_JSON.format(error="not an object"))
    return parsed


def build_rerun(b: Builder) -> m.Rerun:
    tasks: list[m.TaskId] = []
    for item in b:
        if item.kind in ("word", "option") and TASK_ID.fullmatch(item.raw):
            tasks.append(m.TaskId(item.raw))
        elif item.kind in ("word", "option"):
            hint = "" if item.kind == "option" or REQUEST_ID.fullmatch(item.raw) else RERUN_A_JOB
            raise BuildError.at(item, (RERUN_NOT_A_TASK + hint).format(raw=item.raw))
        else:
            raise b.unexpected(item)
    if not tasks:
        raise BuildError(RERUN_NEEDS_TASKS, b.end, 1)
    return m.Rerun(tuple(dict.fromkeys(tasks)))


def build_cancel(b: Builder) -> m.Cancel:
    targets: list[m.RequestId | m.TaskId] = []
    everything: Item | None = None
    for item in b:
        if item.kind == "on":
            b.clause(item)
        elif item.kind == "all":
            b.once(item)
            everything = item
        elif item.kind == "word" and REQUEST_ID.fullmatch(item.raw):
            targets.append(m.RequestId(item.raw))
        elif item.kind in ("word", "option") and TASK_ID.fullmatch(item.raw):
            targets.append(m.TaskId(item.raw))
        elif item.kind == "word":
            raise BuildError.at(item, NOT_A_TARGET.format(raw=item.raw))
        else:
            raise b.unexpected(item)
    if everything is not None and targets:
        raise BuildError.at(everything, ALL_AND_TARGETS.format(raw=targets[0].text))
    if everything is None and not targets:
        raise BuildError(NEEDS_CANCEL_TARGET, b.end, 1)
    return m.Cancel(tuple(dict.fromkeys(targets)), everything is not None, b.revision)


MAX_PUSHES = 50
ASCII_DIGITS = re.compile(r"[0-9]{1,6}")


def build_pushes(b: Builder) -> m.Pushes:
    count: int | None = None
    for item in b:
        if item.kind == "on":
            b.clause(item)
        elif item.kind == "word" and count is None and ASCII_DIGITS.fullmatch(item.raw):
            count = int(item.raw)
            if not 1 <= count <= MAX_PUSHES:
                raise BuildError.at(item, PUSHES_COUNT.format(limit=MAX_PUSHES, raw=item.raw))
        else:
            raise b.unexpected(item)
    return m.Pushes(count or 10, b.revision)


def build_push(b: Builder) -> m.Push:
    return m.Push(_a_revision(b))


def build_actions(b: Builder) -> m.Actions:
    task: m.TaskId | None = None
    for item in b:
        if item.kind == "on":
            b.once(item, "on")
            target = b.argument(item)
            if TASK_ID.fullmatch(target.raw):
                task = m.TaskId(target.raw)
            else:
                b.revision = parse_revision(target)
        elif item.kind in ("word", "option") and TASK_ID.fullmatch(item.raw) and task is None:
            b.once(item, "on")
            task = m.TaskId(item.raw)
        elif item.kind == "word" and b.revision is None and task is None:
            b.once(item, "on")
            b.revision = parse_revision(item)
        else:
            raise b.unexpected(item)
    if task is not None and b.revision is not None:
        raise BuildError(BOTH_TASK_AND_REVISION, b.end, 1)
    return m.Actions(task, b.revision)


def build_status(b: Builder) -> m.Status:
    request: m.RequestId | None = None
    for item in b:
        if item.kind == "on":
            b.clause(item)
        elif item.kind == "word" and request is None and b.revision is None:
            if REQUEST_ID.fullmatch(item.raw):
                request = m.RequestId(item.raw)
            else:
                b.once(item, "on")
                b.revision = parse_revision(item)
        else:
            raise b.unexpected(item)
    if request is not None and b.revision is not None:
        raise BuildError(BOTH_REQUEST_AND_REVISION, 0, b.end)
    return m.Status(request, b.revision)


def build_jobs(b: Builder) -> m.Jobs:
    terms: list[str] = []
    for item in b:
        if item.kind in ("on", "for"):
            b.clause(item)
        elif item.kind == "query":
            selector = classify(item)
            terms.append(selector.text)
        elif item.kind == "term":
            terms.append(item.raw)
        else:
            raise b.unexpected(item)
    return m.Jobs(" ".join(terms), b.revision, b.platform_filters())


def build_confirm(b: Builder) -> m.Confirm:
    request: m.RequestId | None = None
    for item in b:
        if item.kind == "word" and request is None:
            if not REQUEST_ID.fullmatch(item.raw):
                raise BuildError.at(item, NOT_A_REQUEST_ID.format(raw=item.raw))
            request = m.RequestId(item.raw)
        else:
            raise b.unexpected(item)
    if request is None:
        raise BuildError(CONFIRM_NEEDS_ID, b.end, 1)
    return m.Confirm(request)


def build_help(b: Builder) -> m.Help:
    topic: str | None = None
    for item in b:
        if item.kind == "word" and topic is None:
            word = item.raw.lower()
            if word in ALIASES:
                topic = ALIASES[word]
            elif word in HELP_TOPICS:
                topic = word
            else:
                guess = nearest(word, [*ALIASES, *HELP_TOPICS])
                fix = Fix(item.loc, item.end, ALIASES.get(guess, guess)) if guess else None
                topics = one_of([*VERBS, *HELP_TOPICS])
                raise BuildError.at(item, UNKNOWN_TOPIC.format(raw=item.raw, topics=topics), fix)
        else:
            raise b.unexpected(item)
    return m.Help(topic)


def build_approve(b: Builder) -> m.Approve:
    return m.Approve(_a_revision(b))


def _a_revision(b: Builder) -> m.Revision | None:
    """A command whose one argument is a push: ``REVISION`` or ``on REVISION``, once."""
    for item in b:
        if item.kind == "on":
            b.clause(item)
        elif item.kind == "word":
            b.once(item, "on")
            b.revision = parse_revision(item)
        else:
            raise b.unexpected(item)
    return b.revision


def build_more(b: Builder) -> m.More:
    for item in b:
        raise b.unexpected(item)
    return m.More()


def build_try(b: Builder) -> m.Try:
    values: dict[str, list[tuple[Item, Item | None]]] = {}
    for item in b:
        if item.kind in ("on", "dry_run"):
            b.clause(item)
        elif item.kind.startswith("try:"):
            dest = item.kind.removeprefix("try:")
            value = None
            following = b.peek()
            if following is not None and following.kind == "try_value":
                value = next(b)
            elif following is not None and following.kind == "missing":
                missing = next(b)
                after = b.peek()
                if after is not None and after.raw[0] in "'\"":
                    _unterminated(after)
                raise BuildError(
                    TRY_MISSING_VALUE.format(name=item.raw.rstrip("=")), missing.loc, 1
                )
            values.setdefault(dest, []).append((item, value))
        elif item.kind == "try_unknown_option" and item.raw.lower() in ("--notify", "--quiet"):
            b.clause(Item("option", item.raw, item.loc))
        elif item.kind == "try_unknown_option":
            names = [*trysyntax.OPTION_NAMES, "--dry-run", "--notify", "--quiet"]
            guess = nearest(item.raw.split("=")[0], names)
            fix = Fix(item.loc, item.loc + len(item.raw.split("=")[0]), guess) if guess else None
            raise BuildError.at(item, TRY_UNKNOWN_OPTION.format(raw=item.raw), fix)
        else:
            raise b.unexpected(item)
    options = _try_options(values, b.limits)
    if not options.build_types and options.jobs == ():
        raise BuildError(TRY_NEEDS_BUILDS, b.end, 1, Fix(b.end, b.end, " -b do"))
    return m.Try(options, b.revision, b.dry_run, notify=b.notify, quiet=b.quiet)


def _try_options(values: dict[str, list[tuple[Item, Item | None]]], limits: Limits) -> m.TryOptions:
    """Gecko's semantics: defaults when absent, the last value wins, ``-j`` accumulates."""
    fields: dict[str, object] = {}

    def last(dest: str) -> tuple[Item, Item | None] | None:
        given = values.get(dest)
        return given[-1] if given else None

    def text(value: Item) -> str:
        return trysyntax.dequote(value.raw)

    if given := last("build_types"):
        flag, value = given
        assert value is not None
        letters = text(value)
        if not letters or any(c not in m.BUILD_TYPE_LETTERS for c in letters):
            raise BuildError.at(value, TRY_BAD_BUILD.format(raw=letters))
        fields["build_types"] = tuple(dict.fromkeys(m.BUILD_TYPE_LETTERS[c] for c in letters))
    if given := last("platforms"):
        word = text(given[1]) if given[1] else "all"
        if word != "all":
            fields["platforms"] = (
                () if word == "none" else tuple(p.strip() for p in word.split(",") if p.strip())
            )
    for dest in ("unittests", "talos", "raptor"):
        if given := last(dest):
            fields[dest] = _test_selection(*given)
    if "jobs" in values:
        words = [text(v) for _, v in values["jobs"] if v is not None]
        if words == ["all"]:
            fields["jobs"] = None
        elif words != ["none"]:
            jobs = [j.strip() for w in words for j in w.split(",") if j.strip()]
            if "all" in jobs or "none" in jobs:
                raise BuildError.at(values["jobs"][0][0], TRY_ALL_WITH_OTHERS)
            fields["jobs"] = tuple(dict.fromkeys(jobs))
    for dest in ("rebuild", "rebuild_talos", "rebuild_raptor"):
        if given := last(dest):
            flag, value = given
            assert value is not None
            raw = text(value)
            if not raw.isdigit() or not 1 <= int(raw) <= limits.max_times:
                message = TRY_BAD_NUMBER.format(
                    flag=flag.raw.rstrip("="), limit=limits.max_times, raw=raw
                )
                raise BuildError.at(value, message)
            fields[dest] = int(raw)
    env: list[tuple[str, str]] = []
    for _, value in values.get("env", []):
        assert value is not None
        key, sep, setting = text(value).partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise BuildError.at(value, TRY_BAD_SETENV.format(raw=text(value)))
        env.append((key, setting))
    if env:
        fields["env"] = tuple(env)
    if given := last("tag"):
        assert given[1] is not None
        fields["tag"] = text(given[1])
    for switch in ("artifact", "no_retry", "interactive", "gecko_profile", "include_nightly"):
        if switch in values:
            fields[switch] = True
    emails = [
        (item.loc, dest)
        for dest in ("all_emails", "failure_emails")
        for item, _ in values.get(dest, [])
    ]
    if emails:
        fields["notifications"] = "all" if max(emails)[1] == "all_emails" else "failure"
    return m.TryOptions(**fields)  # type: ignore[arg-type]


def _test_selection(flag: Item, value: Item | None) -> m.TestSelection:
    """``all``, ``none``, or test specs such as ``mochitest-1[linux64,-windows10-64]``."""
    word = trysyntax.dequote(value.raw) if value else "all"
    if word == "all":
        return None
    if word == "none":
        return ()
    assert value is not None
    try:
        parsed = trysyntax.TEST_SPECS.parse_string(word, parse_all=True)
    except pp.ParseBaseException as exc:
        exact = value.raw == word  # columns map one to one when nothing was unquoted
        loc = value.loc + (exc.loc if exact else 0)
        found = word[exc.loc : exc.loc + 10] or "the end"
        raise BuildError(TRY_BAD_TESTS.format(flag=flag.raw, found=found), loc, 1) from None
    specs = []
    for spec in parsed:
        platforms = tuple(
            m.PlatformRestriction(p.strip().lstrip("-").strip(), p.strip().startswith("-"))
            for p in spec.get("platforms", [])
        )
        specs.append(m.TestSpec(spec["name"], platforms))
    return tuple(specs)


BUILDERS: dict[str, Callable[[Builder], m.AnyCommand]] = {
    "schedule": build_schedule,
    "retrigger": build_retrigger,
    "rerun": build_rerun,
    "cancel": build_cancel,
    "status": build_status,
    "pushes": build_pushes,
    "push": build_push,
    "actions": build_actions,
    "action": build_action,
    "backfill": build_backfill,
    "bisect": build_bisect,
    "jobs": build_jobs,
    "confirm": build_confirm,
    "help": build_help,
    "try": build_try,
    "approve": build_approve,
    "more": build_more,
}


def build(items: list[Item], limits: Limits, end: int) -> m.AnyCommand:
    """The command that ``items`` (from ``rules.tokenize``) spell, or a ``BuildError``.

    ``end`` is where the command's text ends: errors about something missing point there.
    """
    if not items:
        raise BuildError(NO_COMMAND, 0, 1)
    head = items[0]
    verb = head.kind.removeprefix("verb:")
    if verb == "?":
        guess = nearest(head.raw, ALIASES)
        fix = Fix(head.loc, head.end, ALIASES[guess]) if guess else None
        raise BuildError.at(head, UNKNOWN_VERB.format(word=head.raw, verbs=one_of(VERBS)), fix)
    return BUILDERS[verb](Builder(verb, items[1:], limits, end=end))
