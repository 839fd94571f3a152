"""Load a push's full task graph fast and index its jobs by label, symbol, platform and suite.

Only the fields the bot searches on are decoded when the graph loads. Each task body
stays a ``msgspec.Raw`` view into the original bytes (no copy) and is decoded only when
that task is planned, which is what makes loading Gecko-sized graphs fast and small.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from bot.graph.errors import GraphError

LEGACY_NAMES = ("full-task-graph.json", "all_tasks.json")


class _Machine(msgspec.Struct):
    platform: str | None = None


class _Treeherder(msgspec.Struct):
    symbol: str | None = None
    groupSymbol: str | None = None  # noqa: N815 - Taskcluster's own field name
    groupName: str | None = None  # noqa: N815
    machine: _Machine | None = None
    collection: dict[str, Any] | None = None
    tier: int | None = None


class _Extra(msgspec.Struct):
    treeherder: _Treeherder | None = None


class _TaskHead(msgspec.Struct):
    """The few fields of a task body that the indexes need."""

    extra: _Extra | None = None


class Attributes(msgspec.Struct, gc=False):
    """The task attributes the bot selects by; others in the graph are skipped on load.

    Read like the mapping taskgraph keeps (``get``, ``in``, ``[]``); an attribute the
    graph does not give is absent (None).
    """

    kind: str | None = None
    build_platform: str | None = None
    build_type: str | None = None
    test_platform: str | None = None
    unittest_try_name: str | None = None
    talos_try_name: str | None = None
    raptor_try_name: str | None = None
    job_try_name: str | None = None
    test_chunk: str | int | None = None
    run_on_projects: tuple[str, ...] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and getattr(self, name, None) is not None

    def __getitem__(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise KeyError(name)
        return value


class Entry(msgspec.Struct, gc=False):
    """One task of a full task graph, as taskgraph writes it; the body stays raw."""

    label: str = ""
    kind: str = ""
    attributes: Attributes = msgspec.field(default_factory=Attributes)
    dependencies: dict[str, str] = {}
    soft_dependencies: list[str] = []
    optimization: dict[str, Any] | None = None
    task: msgspec.Raw = msgspec.Raw(b"{}")


_GRAPH = msgspec.json.Decoder(dict[str, Entry])
_HEAD = msgspec.json.Decoder(_TaskHead)
_BODY = msgspec.json.Decoder(dict[str, Any])
_L2T = msgspec.json.Decoder(dict[str, str])


def _decode_error(what: str, data: bytes, error: Exception) -> GraphError:
    text = str(error)
    if "truncated" in text.lower() or not data.strip():
        return GraphError(f"{what} is truncated or empty ({len(data):,} bytes): {text}")
    return GraphError(f"{what} is not what taskgraph writes: {text}")


def load_label_to_taskid(*documents: bytes) -> dict[str, str]:
    """Merge ``label-to-taskid.json`` documents in order; a later one wins for a label.

    Pass the decision task's first, then those of later action tasks and earlier bot
    runs on the same push.
    """
    merged: dict[str, str] = {}
    for number, data in enumerate(documents, start=1):
        try:
            merged.update(_L2T.decode(data))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise _decode_error(f"label-to-taskid document {number}", data, error) from None
    return merged


class TaskGraphIndex:
    """A loaded full task graph with indexes for resolving job names."""

    def __init__(self, data: bytes, *, name: str = "full-task-graph.json") -> None:
        try:
            entries = _GRAPH.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise _decode_error(name, data, error) from None
        self.name = name
        self.nbytes = len(data)
        self.labels: list[str] = list(entries)
        self.position: dict[str, int] = {label: i for i, label in enumerate(self.labels)}
        self.entries: list[Entry] = list(entries.values())
        # One copy of each repeated string (platforms, kinds, dependency labels): a graph
        # repeats them tens of thousands of times.
        shared: dict[Any, Any] = {}
        share = shared.setdefault
        for label, entry in zip(self.labels, self.entries, strict=True):
            if entry.label and entry.label != label:
                raise GraphError(
                    f"{name}: the task keyed `{label}` says its label is `{entry.label}`"
                )
            entry.label = label
            entry.kind = share(entry.kind, entry.kind)
            attributes = entry.attributes
            for field in attributes.__struct_fields__:
                value = getattr(attributes, field)
                if value is not None:
                    setattr(attributes, field, share(value, value))
            dependencies = entry.dependencies
            for edge, dependency in dependencies.items():
                dependencies[edge] = share(dependency, dependency)
        self._build_indexes()

    # --- indexes ---------------------------------------------------------------

    def _build_indexes(self) -> None:
        self.symbols: list[str | None] = []  # "G(S)" or "S", per task
        by_symbol: defaultdict[str, list[int]] = defaultdict(list)
        by_bare_symbol: defaultdict[str, list[int]] = defaultdict(list)
        by_platform: defaultdict[str, set[int]] = defaultdict(set)
        by_build_type: defaultdict[str, set[int]] = defaultdict(set)
        by_try_name: defaultdict[str, list[int]] = defaultdict(list)
        by_kind: defaultdict[str, list[int]] = defaultdict(list)
        self.tiers: list[int | None] = []
        for i, entry in enumerate(self.entries):
            attributes = entry.attributes
            try:
                head = _HEAD.decode(entry.task)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                raise GraphError(f"{self.name}: task `{entry.label}`: {error}") from None
            treeherder = head.extra.treeherder if head.extra else None
            symbol = None
            if treeherder and treeherder.symbol:
                group = treeherder.groupSymbol
                bare = treeherder.symbol
                symbol = f"{group}({bare})" if group and group != "?" else bare
                by_symbol[symbol].append(i)
                by_bare_symbol[bare].append(i)
            self.symbols.append(symbol)
            self.tiers.append(treeherder.tier if treeherder else None)
            for platform in _platforms_of(attributes, treeherder):
                by_platform[platform].add(i)
            for build_type in _build_types_of(attributes, treeherder):
                by_build_type[build_type].add(i)
            for key in ("unittest_try_name", "talos_try_name", "raptor_try_name"):
                try_name = attributes.get(key)
                if isinstance(try_name, str):
                    by_try_name[try_name].append(i)
            by_kind[entry.kind or str(attributes.get("kind", ""))].append(i)
        self.by_symbol = dict(by_symbol)
        self.by_bare_symbol = dict(by_bare_symbol)
        self.by_platform = dict(by_platform)
        self.by_build_type = dict(by_build_type)
        self.by_try_name = dict(by_try_name)
        self.by_kind = dict(by_kind)
        # Every label on its own line, so one C-level regex scan searches them all, and
        # sorted copies, so a prefix is a bisection; each also lower-cased for fzf.
        self._lines = _Lines(self.labels)
        self._lower = _Lines([label.lower() for label in self.labels])

    # --- lookups -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self.position

    def entry(self, label: str) -> Entry:
        return self.entries[self.position[label]]

    def body(self, label: str) -> dict[str, Any]:
        """The task definition of ``label``, decoded now (a new dict each call)."""
        return _BODY.decode(self.entry(label).task)

    def runnable_job(self, label: str) -> dict[str, Any] | None:
        """The job as Treeherder's runnable-jobs list has it (what Gecko's decision task
        writes to ``runnable-jobs.json``): ``symbol`` and, when the task has them,
        ``groupSymbol``, ``groupName``, ``platform`` (the machine) and ``collection``;
        None for a task Treeherder does not show (no ``extra.treeherder``)."""
        head = _HEAD.decode(self.entry(label).task)
        treeherder = head.extra.treeherder if head.extra else None
        if treeherder is None or treeherder.symbol is None:
            return None
        job: dict[str, Any] = {"symbol": treeherder.symbol}
        for name in ("groupName", "groupSymbol", "collection"):
            value = getattr(treeherder, name)
            if value is not None:
                job[name] = value
        if treeherder.machine and treeherder.machine.platform:
            job["platform"] = treeherder.machine.platform
        return job

    def attribute(self, i: int, name: str) -> Any:
        return self.entries[i].attributes.get(name)

    def find(
        self, regex: re.Pattern[str], *, lower: bool = False, within: set[int] | None = None
    ) -> set[int]:
        """Labels in which ``regex`` finds a match (``^``/``$`` are the label's ends).

        ``lower`` searches the lower-cased labels. With ``within``, only those labels are
        searched, one by one when they are few, else all at once then narrowed.
        """
        lines = self._lower if lower else self._lines
        if within is not None and len(within) * 8 < len(self.labels):
            return {i for i in within if regex.search(lines.labels[i])}
        found = lines.find(regex)
        return found if within is None else found & within

    def prefixed(self, prefix: str, *, lower: bool = False) -> set[int]:
        """Labels that start with ``prefix``."""
        return (self._lower if lower else self._lines).prefixed(prefix)

    def filtered(self, platforms: Iterable[tuple[str | None, str | None]]) -> set[int] | None:
        """Indexes passing any of the (platform, build type) pairs; None when no pairs."""
        pairs = list(platforms)
        if not pairs:
            return None
        passing: set[int] = set()
        for platform, build_type in pairs:
            on_platform = self.by_platform.get(platform, set()) if platform else None
            of_type = self.by_build_type.get(build_type, set()) if build_type else None
            if on_platform is not None and of_type is not None:
                passing |= on_platform & of_type
            else:
                passing |= on_platform if on_platform is not None else of_type or set()
        return passing


class _Lines:
    """Labels as one text of lines and as a sorted list, for fast regex and prefix search."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.text = "\n".join(labels)
        starts = [0]
        for label in labels[:-1]:
            starts.append(starts[-1] + len(label) + 1)
        self.starts = starts
        self.order = sorted(range(len(labels)), key=labels.__getitem__)
        self.keys = [labels[i] for i in self.order]

    def find(self, regex: re.Pattern[str]) -> set[int]:
        starts = self.starts
        return {bisect_right(starts, m.start()) - 1 for m in regex.finditer(self.text)}

    def prefixed(self, prefix: str) -> set[int]:
        low = bisect_left(self.keys, prefix)
        high = bisect_left(self.keys, prefix + "\U0010ffff", low)
        return set(self.order[low:high])


def _platforms_of(attributes: Attributes, treeherder: _Treeherder | None) -> set[str]:
    names: set[str] = set()
    if treeherder and treeherder.machine and treeherder.machine.platform:
        names.add(treeherder.machine.platform)
    for key in ("build_platform", "test_platform"):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            names.add(value)
            names.add(value.split("/")[0])
    return names


def _build_types_of(attributes: Attributes, treeherder: _Treeherder | None) -> set[str]:
    names = set()
    build_type = attributes.get("build_type")
    if isinstance(build_type, str):
        names.add(build_type)
    if treeherder and treeherder.collection:
        names.update(k for k, v in treeherder.collection.items() if v)
    return names
