"""Immutable, typed command objects that the grammar produces."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Characters that make a bare word a shell-style glob.
GLOB_CHARS = frozenset("*?[")
# Characters that a word needs no quoting for in canonical text.
_SAFE_SHELL_WORD = re.compile(r"[A-Za-z0-9_./:+=,\[\]-]+")
_CHUNK_SUFFIX = re.compile(r"^(?P<suite>.+?)-(?P<chunk>[0-9]+)$")


def quote(text: str) -> str:
    """Quote ``text`` for canonical command text (double quotes, backslash escapes)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# --- revisions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Revision:
    """A push: a hex node (7-40 digits) or the latest push, optionally of a named project."""

    node: str | None = None
    project: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.node is None

    def canonical(self) -> str:
        node = self.node or "latest"
        return f"{self.project}@{node}" if self.project else node

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "project": self.project}


# --- selectors -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Label:
    """A full task label, e.g. ``test-linux1804-64-qr/debug-mochitest-browser-chrome-3``."""

    text: str
    kind: ClassVar[str] = "label"

    def canonical(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Glob:
    """A shell-style pattern over task labels, e.g. ``test-*/debug-mochitest-plain-*``."""

    pattern: str
    kind: ClassVar[str] = "glob"

    @property
    def text(self) -> str:
        return self.pattern

    def canonical(self) -> str:
        return self.pattern


@dataclass(frozen=True, slots=True)
class Symbol:
    """A Treeherder symbol written with its group, e.g. ``M(bc3)``."""

    group: str
    symbol: str
    kind: ClassVar[str] = "symbol"

    @property
    def text(self) -> str:
        return f"{self.group}({self.symbol})"

    def canonical(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Name:
    """A bare job name: a label, an ungrouped Treeherder symbol, or a suite with a chunk.

    The grammar cannot tell these apart; the resolver tries them in that order.
    """

    text: str
    kind: ClassVar[str] = "name"

    @property
    def suite(self) -> str:
        match = _CHUNK_SUFFIX.match(self.text)
        return match["suite"] if match else self.text

    @property
    def chunk(self) -> int | None:
        match = _CHUNK_SUFFIX.match(self.text)
        return int(match["chunk"]) if match else None

    def canonical(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Query:
    """A quoted fzf-style query, e.g. ``"mochitest !asan linux64$"``."""

    text: str
    kind: ClassVar[str] = "query"

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.text.split())

    def canonical(self) -> str:
        return quote(self.text)


@dataclass(frozen=True, slots=True)
class TaskId:
    """A Taskcluster taskId (a 22-character slugid)."""

    text: str
    kind: ClassVar[str] = "task_id"

    def canonical(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class RequestId:
    """The id of an earlier bot request, e.g. ``r7f3a``."""

    text: str
    kind: ClassVar[str] = "request_id"

    def canonical(self) -> str:
        return self.text


Selector = Label | Glob | Symbol | Name | Query | TaskId


def selector_to_json(selector: Selector) -> dict[str, Any]:
    """Describe a selector as JSON: its kind, its text, and the parts of its form."""
    data: dict[str, Any] = {"kind": selector.kind, "text": selector.text}
    if isinstance(selector, Symbol):
        data.update(group=selector.group, symbol=selector.symbol)
    elif isinstance(selector, Name):
        data.update(suite=selector.suite, chunk=selector.chunk)
    return data


# --- filters -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """One alternative of a ``for`` clause: a platform, a build type, or both."""

    platform: str | None = None
    build_type: str | None = None

    def canonical(self) -> str:
        if self.platform and self.build_type:
            return f"{self.platform}/{self.build_type}"
        return self.platform or self.build_type or ""

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "build_type": self.build_type}


# --- commands ------------------------------------------------------------------


def _revision_json(revision: Revision | None) -> dict[str, Any]:
    return {
        "revision": revision.node if revision else None,
        "project": revision.project if revision else None,
    }


def _clauses(
    revision: Revision | None = None,
    filters: tuple[PlatformFilter, ...] = (),
    times: int = 1,
    dry_run: bool = False,
    notify: bool = False,
    quiet: bool = False,
) -> list[str]:
    words: list[str] = []
    if revision is not None:
        words += ["on", revision.canonical()]
    if filters:
        words += ["for", *(f.canonical() for f in filters)]
    if times != 1:
        words.append(f"x{times}")
    if dry_run:
        words.append("--dry-run")
    if notify:
        words.append("--notify")
    if quiet:
        words.append("--quiet")
    return words


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command; ``verb`` names it, ``canonical()`` writes it back."""

    verb: ClassVar[str] = ""

    def canonical(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """A JSON object with the same keys for every verb (null or empty where unused)."""
        return {
            "verb": self.verb,
            "selectors": [],
            "revision": None,
            "project": None,
            "filters": [],
            "times": 1,
            "dry_run": False,
            "canonical": self.canonical(),
        }


@dataclass(frozen=True, slots=True)
class Schedule(Command):
    """Schedule jobs (and the dependencies they need) on a push."""

    selectors: tuple[Selector, ...]
    revision: Revision | None = None
    filters: tuple[PlatformFilter, ...] = ()
    times: int = 1
    dry_run: bool = False
    notify: bool = False  # the requester hears when the request ends
    quiet: bool = False  # only the final state is posted
    verb: ClassVar[str] = "schedule"

    def canonical(self) -> str:
        words = [self.verb, *(s.canonical() for s in self.selectors)]
        words += _clauses(
            self.revision, self.filters, self.times, self.dry_run, self.notify, self.quiet
        )
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            selectors=[selector_to_json(s) for s in self.selectors],
            filters=[f.to_json() for f in self.filters],
            times=self.times,
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Retrigger(Command):
    """Run jobs of a push again: named ones, or every failed one (``failed``)."""

    selectors: tuple[Selector, ...] = ()
    failed: bool = False
    revision: Revision | None = None
    filters: tuple[PlatformFilter, ...] = ()
    times: int = 1
    dry_run: bool = False
    exception: bool = False  # every job whose latest run ended in an exception
    notify: bool = False
    quiet: bool = False
    verb: ClassVar[str] = "retrigger"

    def canonical(self) -> str:
        words = [self.verb] + (["failed"] if self.failed else [])
        words += ["exception"] if self.exception else []
        words += [s.canonical() for s in self.selectors]
        words += _clauses(
            self.revision, self.filters, self.times, self.dry_run, self.notify, self.quiet
        )
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            selectors=[selector_to_json(s) for s in self.selectors],
            failed=self.failed,
            exception=self.exception,
            filters=[f.to_json() for f in self.filters],
            times=self.times,
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Backfill(Command):
    """Schedule jobs on the pushes before one, each against its own push's graph: where a
    job started failing shows as the boundary between passing and failing pushes."""

    selectors: tuple[Selector, ...]
    revision: Revision | None = None
    depth: int = 5  # how many pushes before the named one
    filters: tuple[PlatformFilter, ...] = ()
    times: int = 1
    dry_run: bool = False
    notify: bool = False
    quiet: bool = False
    verb: ClassVar[str] = "backfill"

    def canonical(self) -> str:
        words = [self.verb, *(s.canonical() for s in self.selectors)]
        words += [] if self.depth == DEFAULT_DEPTH else ["depth", str(self.depth)]
        words += _clauses(
            self.revision, self.filters, self.times, self.dry_run, self.notify, self.quiet
        )
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            selectors=[selector_to_json(s) for s in self.selectors],
            depth=self.depth,
            filters=[f.to_json() for f in self.filters],
            times=self.times,
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
            **_revision_json(self.revision),
        )
        return data


DEFAULT_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Bisect(Command):
    """Find the first push where a job fails: run it on the pushes between one where it
    passes and one where it fails, halving that range each round."""

    selectors: tuple[Selector, ...]
    revision: Revision | None = None  # where the job fails (None: the place's or the latest)
    good: Revision | None = None  # where it passes (None: the oldest push searched)
    filters: tuple[PlatformFilter, ...] = ()
    copies: int = 3  # runs of the job on each push it is asked of at first
    max_pushes: int | None = None  # None: the project's setting
    dry_run: bool = False
    notify: bool = False
    quiet: bool = False
    verb: ClassVar[str] = "bisect"

    def canonical(self) -> str:
        words = [self.verb, *(s.canonical() for s in self.selectors)]
        words += _clauses(self.revision, self.filters)
        words += ["from", self.good.canonical()] if self.good is not None else []
        words += [] if self.copies == DEFAULT_COPIES else [f"x{self.copies}"]
        words += ["max", str(self.max_pushes), "pushes"] if self.max_pushes else []
        words += _clauses(dry_run=self.dry_run, notify=self.notify, quiet=self.quiet)
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            selectors=[selector_to_json(s) for s in self.selectors],
            good=self.good.to_json() if self.good is not None else None,
            filters=[f.to_json() for f in self.filters],
            copies=self.copies,
            max_pushes=self.max_pushes,
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
            **_revision_json(self.revision),
        )
        return data


DEFAULT_COPIES = 3


@dataclass(frozen=True, slots=True)
class Action(Command):
    """Trigger one of the push's in-tree actions by name, on the push or on one of its tasks
    (a taskId, or a job of the push), with an input its schema is checked against."""

    name: str
    task: TaskId | None = None
    job: Selector | None = None
    revision: Revision | None = None
    input: str = "{}"  # a JSON object, keys sorted: hashable, and one text for one input
    dry_run: bool = False
    notify: bool = False
    quiet: bool = False
    verb: ClassVar[str] = "action"

    def canonical(self) -> str:
        words = [self.verb, self.name]
        if self.task is not None:
            words += [self.task.canonical()]  # bare: a taskId may begin with `-`
        elif self.job is not None:
            words += [self.job.canonical()]
        words += _clauses(self.revision)
        if self.input != "{}":
            words.append(self.input)
        return " ".join(
            words + _clauses(dry_run=self.dry_run, notify=self.notify, quiet=self.quiet)
        )

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            name=self.name,
            task=self.task.text if self.task else None,
            selectors=[selector_to_json(self.job)] if self.job is not None else [],
            input=json.loads(self.input),
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Rerun(Command):
    """Run tasks again as they are (the same taskIds): the Queue's ``rerunTask``, for a task
    that ended for reasons of the infrastructure."""

    tasks: tuple[TaskId, ...] = ()
    verb: ClassVar[str] = "rerun"

    def canonical(self) -> str:
        return " ".join([self.verb, *(t.canonical() for t in self.tasks)])

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(tasks=[t.text for t in self.tasks])
        return data


@dataclass(frozen=True, slots=True)
class Cancel(Command):
    """Cancel earlier requests or tasks, or everything the bot scheduled on a push (``all``)."""

    targets: tuple[RequestId | TaskId, ...] = ()
    all: bool = False
    revision: Revision | None = None
    verb: ClassVar[str] = "cancel"

    def canonical(self) -> str:
        words = [self.verb] + (["all"] if self.all else [t.canonical() for t in self.targets])
        return " ".join(words + _clauses(self.revision))

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            all=self.all,
            targets=[{"kind": t.kind, "text": t.text} for t in self.targets],
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Pushes(Command):
    """List a project's latest pushes (or those up to a push), newest first."""

    count: int = 10
    revision: Revision | None = None
    verb: ClassVar[str] = "pushes"

    def canonical(self) -> str:
        return " ".join([self.verb, str(self.count), *_clauses(self.revision)])

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(count=self.count, **_revision_json(self.revision))
        return data


@dataclass(frozen=True, slots=True)
class Push(Command):
    """The whole push at a glance: its tasks by state, failures by suite, what was added."""

    revision: Revision | None = None
    verb: ClassVar[str] = "push"

    def canonical(self) -> str:
        return " ".join([self.verb, *_clauses(self.revision)])

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(**_revision_json(self.revision))
        return data


@dataclass(frozen=True, slots=True)
class Actions(Command):
    """List the in-tree actions of a push (or those that act on one of its tasks)."""

    task: TaskId | None = None
    revision: Revision | None = None
    verb: ClassVar[str] = "actions"

    def canonical(self) -> str:
        if self.task is not None:
            return f"{self.verb} on {self.task.canonical()}"
        return " ".join([self.verb, *_clauses(self.revision)])

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(task=self.task.text if self.task else None, **_revision_json(self.revision))
        return data


@dataclass(frozen=True, slots=True)
class Status(Command):
    """Show the state of a request, of a push, or of the asker's recent requests."""

    request_id: RequestId | None = None
    revision: Revision | None = None
    verb: ClassVar[str] = "status"

    def canonical(self) -> str:
        if self.request_id:
            return f"{self.verb} {self.request_id.canonical()}"
        if self.revision:
            return f"{self.verb} {self.revision.canonical()}"
        return self.verb

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            request_id=self.request_id.text if self.request_id else None,
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Jobs(Command):
    """Search the jobs that can run on a push (an fzf-style query, narrowed by filters)."""

    query: str = ""
    revision: Revision | None = None
    filters: tuple[PlatformFilter, ...] = ()
    verb: ClassVar[str] = "jobs"

    def canonical(self) -> str:
        words = [self.verb] + ([quote(self.query)] if self.query else [])
        return " ".join(words + _clauses(self.revision, self.filters))

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            query=self.query,
            filters=[f.to_json() for f in self.filters],
            **_revision_json(self.revision),
        )
        return data


@dataclass(frozen=True, slots=True)
class Confirm(Command):
    """Go ahead with a request that was held for confirmation."""

    request_id: RequestId
    verb: ClassVar[str] = "confirm"

    def canonical(self) -> str:
        return f"{self.verb} {self.request_id.canonical()}"

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(request_id=self.request_id.text)
        return data


@dataclass(frozen=True, slots=True)
class Help(Command):
    """Explain the commands, or one command or topic in detail."""

    topic: str | None = None
    verb: ClassVar[str] = "help"

    def canonical(self) -> str:
        return f"{self.verb} {self.topic}" if self.topic else self.verb

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(topic=self.topic)
        return data


@dataclass(frozen=True, slots=True)
class Approve(Command):
    """Let a pull request from a fork be scheduled at its current head (``ok-to-test``)."""

    revision: Revision | None = None
    verb: ClassVar[str] = "approve"

    def canonical(self) -> str:
        return f"{self.verb} {self.revision.canonical()}" if self.revision else self.verb

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(**_revision_json(self.revision))
        return data


@dataclass(frozen=True, slots=True)
class More(Command):
    """Show the next lines of a long reply that was held back (IRC)."""

    verb: ClassVar[str] = "more"

    def canonical(self) -> str:
        return self.verb


# --- try syntax ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatformRestriction:
    """One ``[...]`` entry of a try test spec: a platform to add, or (``-``) to remove."""

    platform: str
    negated: bool = False

    def canonical(self) -> str:
        return ("-" if self.negated else "") + self.platform


@dataclass(frozen=True, slots=True)
class TestSpec:
    """A try ``-u``/``-t`` entry: a test name (maybe with ``-N`` chunk) and platform limits."""

    name: str
    platforms: tuple[PlatformRestriction, ...] = ()
    __test__: ClassVar[bool] = False  # not a pytest test class

    @property
    def suite(self) -> str:
        match = _CHUNK_SUFFIX.match(self.name)
        return match["suite"] if match else self.name

    @property
    def chunk(self) -> int | None:
        match = _CHUNK_SUFFIX.match(self.name)
        return int(match["chunk"]) if match else None

    def canonical(self) -> str:
        if not self.platforms:
            return self.name
        return f"{self.name}[{','.join(p.canonical() for p in self.platforms)}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suite": self.suite,
            "chunk": self.chunk,
            "platforms": [p.canonical() for p in self.platforms],
        }


# ``None`` stands for "all" and ``()`` for "none", as in Gecko's own try option parser.
TestSelection = tuple[TestSpec, ...] | None
BUILD_TYPE_LETTERS = {"o": "opt", "d": "debug"}


@dataclass(frozen=True, slots=True)
class TryOptions:
    """Gecko try option syntax, with Gecko's defaults (``-p all -u all -t none -r none``)."""

    build_types: tuple[str, ...] = ()
    platforms: tuple[str, ...] | None = None
    unittests: TestSelection = None
    talos: TestSelection = ()
    raptor: TestSelection = ()
    jobs: tuple[str, ...] | None = ()
    rebuild: int = 1
    rebuild_talos: int = 1
    rebuild_raptor: int = 1
    artifact: bool = False
    tag: str | None = None
    no_retry: bool = False
    env: tuple[tuple[str, str], ...] = ()
    interactive: bool = False
    notifications: str | None = None
    gecko_profile: bool = False
    include_nightly: bool = False

    def to_json(self) -> dict[str, Any]:
        def tests(selection: TestSelection) -> list[dict[str, Any]] | str:
            if selection is None:
                return "all"
            return [t.to_json() for t in selection] if selection else "none"

        return {
            "build_types": list(self.build_types),
            "platforms": "all" if self.platforms is None else list(self.platforms) or "none",
            "unittests": tests(self.unittests),
            "talos": tests(self.talos),
            "raptor": tests(self.raptor),
            "jobs": "all" if self.jobs is None else list(self.jobs),
            "rebuild": self.rebuild,
            "rebuild_talos": self.rebuild_talos,
            "rebuild_raptor": self.rebuild_raptor,
            "artifact": self.artifact,
            "tag": self.tag,
            "no_retry": self.no_retry,
            "env": dict(self.env),
            "interactive": self.interactive,
            "notifications": self.notifications,
            "gecko_profile": self.gecko_profile,
            "include_nightly": self.include_nightly,
        }

    def canonical_words(self) -> list[str]:
        """The options as try syntax, in a fixed order, omitting Gecko's defaults."""

        def tests(flag: str, selection: TestSelection, default: TestSelection) -> list[str]:
            if selection == default:
                return []
            if selection is None:
                return [flag, "all"]
            if not selection:
                return [flag, "none"]
            return [flag, _shell_word(",".join(t.canonical() for t in selection))]

        letters = {v: k for k, v in BUILD_TYPE_LETTERS.items()}
        words: list[str] = []
        if self.build_types:
            words += ["-b", "".join(letters[b] for b in self.build_types)]
        if self.platforms is not None:
            words += ["-p", _shell_word(",".join(self.platforms)) if self.platforms else "none"]
        words += tests("-u", self.unittests, None)
        words += tests("-t", self.talos, ())
        words += tests("-r", self.raptor, ())
        if self.jobs is None:
            words += ["-j", "all"]
        elif self.jobs:
            words += ["-j", _shell_word(",".join(self.jobs))]
        for flag, count in (
            ("--rebuild", self.rebuild),
            ("--rebuild-talos", self.rebuild_talos),
            ("--rebuild-raptor", self.rebuild_raptor),
        ):
            if count != 1:
                words += [flag, str(count)]
        for flag, on in (
            ("--artifact", self.artifact),
            ("--no-retry", self.no_retry),
            ("--interactive", self.interactive),
            ("--gecko-profile", self.gecko_profile),
            ("--include-nightly", self.include_nightly),
        ):
            if on:
                words.append(flag)
        if self.notifications == "all":
            words.append("--all-emails")
        elif self.notifications == "failure":
            words.append("--failure-emails")
        if self.tag is not None:
            words += ["--tag", _shell_word(self.tag)]
        for key, value in self.env:
            words += ["--setenv", _shell_word(f"{key}={value}")]
        return words


def _shell_word(text: str) -> str:
    """Write ``text`` as one shell word: bare when every character is safe, else single-quoted."""
    if _SAFE_SHELL_WORD.fullmatch(text) and not text.startswith("-"):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass(frozen=True, slots=True)
class Try(Command):
    """Schedule jobs chosen with Gecko's try option syntax."""

    options: TryOptions = field(default_factory=TryOptions)
    revision: Revision | None = None
    dry_run: bool = False
    notify: bool = False
    quiet: bool = False
    verb: ClassVar[str] = "try"

    def canonical(self) -> str:
        words = ["try:", *self.options.canonical_words()]
        clauses = _clauses(
            self.revision, dry_run=self.dry_run, notify=self.notify, quiet=self.quiet
        )
        return " ".join(words + clauses)

    def to_json(self) -> dict[str, Any]:
        data = Command.to_json(self)
        data.update(
            try_options=self.options.to_json(),
            dry_run=self.dry_run,
            notify=self.notify,
            quiet=self.quiet,
        )
        data.update(_revision_json(self.revision))
        return data


AnyCommand = (
    Schedule
    | Retrigger
    | Rerun
    | Cancel
    | Status
    | Pushes
    | Push
    | Actions
    | Action
    | Backfill
    | Bisect
    | Jobs
    | Confirm
    | Help
    | Try
    | Approve
    | More
)
