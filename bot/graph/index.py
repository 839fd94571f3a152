"""Load a push's full task graph fast and index its jobs by label, symbol, platform and suite.

Only the fields the bot searches on are decoded when the graph loads. Each task body
stays JSON bytes (``Bodies``: a view into the document, later a zlib block) and is decoded
only when that task is planned, which is what makes loading Gecko-sized graphs fast and
small. Consecutive pushes of a project have the same tasks, attributes and dependencies:
the structures built from those (the "skeleton") are shared by every graph that has them
equal, so a kept push costs little more than its packed bodies.
"""

from __future__ import annotations

import re
import weakref
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from bot.graph.bodies import Bodies
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


_NO_BODY = msgspec.Raw(b"{}")
GRAPH_DECODER = msgspec.json.Decoder(dict[str, Entry])
_HEAD = msgspec.json.Decoder(_TaskHead)
_BODY = msgspec.json.Decoder(dict[str, Any])
_L2T = msgspec.json.Decoder(dict[str, str])


def decode_error(what: str, data: bytes, error: Exception) -> GraphError:
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
            raise decode_error(f"label-to-taskid document {number}", data, error) from None
    return merged


class TaskGraphIndex:
    """A loaded full task graph with indexes for resolving job names."""

    # Set by ``GraphLoader.finish``, the one way an index is made.
    name: str
    nbytes: int
    labels: list[str]
    position: dict[str, int]
    entries: list[Entry]
    bodies: Bodies
    symbols: list[str | None]  # "G(S)" or "S", per task
    tiers: list[int | None]
    by_symbol: dict[str, list[int]]
    by_bare_symbol: dict[str, list[int]]
    by_platform: dict[str, set[int]]
    by_build_type: dict[str, set[int]]
    by_try_name: dict[str, list[int]]
    by_kind: dict[str, list[int]]
    _lines: _Lines
    _lower: _Lines
    skeleton: Skeleton

    def __new__(cls, data: bytes, *, name: str = "full-task-graph.json") -> TaskGraphIndex:
        """The index of a whole document (``GraphStream`` makes one while it downloads)."""
        try:
            entries = GRAPH_DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise decode_error(name, data, error) from None
        loader = GraphLoader(name)
        loader.add(entries)
        return loader.finish(len(data))

    @property
    def nbytes_held(self) -> int:
        """Bytes this graph holds of its own: its bodies (the skeleton is counted apart)."""
        return self.bodies.nbytes

    def pack(self) -> None:
        """Pack the bodies (``Bodies.pack``): from then on the graph holds a tenth of its
        document. Run off the event loop; reads go on meanwhile."""
        self.bodies.pack()

    # --- lookups -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self.position

    def entry(self, label: str) -> Entry:
        return self.entries[self.position[label]]

    def body(self, label: str) -> dict[str, Any]:
        """The task definition of ``label``, decoded now (a new dict each call)."""
        return _BODY.decode(self.bodies[self.position[label]])

    def runnable_job(self, label: str) -> dict[str, Any] | None:
        """The job as Treeherder's runnable-jobs list has it (what Gecko's decision task
        writes to ``runnable-jobs.json``): ``symbol`` and, when the task has them,
        ``groupSymbol``, ``groupName``, ``platform`` (the machine) and ``collection``;
        None for a task Treeherder does not show (no ``extra.treeherder``)."""
        head = _HEAD.decode(self.bodies[self.position[label]])
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


class GraphLoader:
    """Builds an index from a graph's tasks, added a batch at a time (``add``) as they are
    decoded, so that most of the work is done by the time the last bytes arrive; ``finish``
    then makes the index."""

    def __init__(self, name: str = "full-task-graph.json") -> None:
        self.name = name
        self.labels: list[str] = []
        self.position: dict[str, int] = {}
        self.entries: list[Entry] = []
        self.bodies: list[msgspec.Raw] = []
        self.symbols: list[str | None] = []
        self.tiers: list[int | None] = []
        self.by_symbol: defaultdict[str, list[int]] = defaultdict(list)
        self.by_bare_symbol: defaultdict[str, list[int]] = defaultdict(list)
        self.by_platform: defaultdict[str, set[int]] = defaultdict(set)
        self.by_build_type: defaultdict[str, set[int]] = defaultdict(set)
        self.by_try_name: defaultdict[str, list[int]] = defaultdict(list)
        self.by_kind: defaultdict[str, list[int]] = defaultdict(list)
        # One copy of each repeated string (platforms, kinds, dependency labels): a graph
        # repeats them tens of thousands of times.
        self._shared: dict[Any, Any] = {}
        self._platforms: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._build_types: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def add(self, entries: dict[str, Entry]) -> None:
        share = self._shared.setdefault
        for label, entry in entries.items():
            if entry.label and entry.label != label:
                raise GraphError(
                    f"{self.name}: the task keyed `{label}` says its label is `{entry.label}`"
                )
            if label in self.position:  # a JSON object's keys are unique; taskgraph's are
                raise GraphError(f"{self.name}: the task `{label}` is in the graph twice")
            i = len(self.labels)
            self.labels.append(label)
            self.position[label] = i
            entry.label = label
            entry.kind = share(entry.kind, entry.kind)
            attributes = entry.attributes
            for field in _ATTRIBUTE_FIELDS:
                value = getattr(attributes, field)
                if value is not None:
                    setattr(attributes, field, share(value, value))
            dependencies = entry.dependencies
            for edge, dependency in dependencies.items():
                dependencies[edge] = share(dependency, dependency)
            # The body leaves the entry, which may then be shared with other pushes' graphs.
            body, entry.task = entry.task, _NO_BODY
            self.bodies.append(body)
            self.entries.append(entry)
            self._index(i, entry, body)

    def _index(self, i: int, entry: Entry, body: msgspec.Raw) -> None:
        attributes = entry.attributes
        try:
            head = _HEAD.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise GraphError(f"{self.name}: task `{entry.label}`: {error}") from None
        treeherder = head.extra.treeherder if head.extra else None
        symbol = None
        if treeherder and treeherder.symbol:
            group = treeherder.groupSymbol
            bare = treeherder.symbol
            symbol = f"{group}({bare})" if group and group != "?" else bare
            self.by_symbol[symbol].append(i)
            self.by_bare_symbol[bare].append(i)
        self.symbols.append(symbol)
        self.tiers.append(treeherder.tier if treeherder else None)
        machine = treeherder.machine.platform if treeherder and treeherder.machine else None
        key = (machine, attributes.build_platform, attributes.test_platform)
        platforms = self._platforms.get(key)
        if platforms is None:
            platforms = self._platforms[key] = tuple(_platforms_of(attributes, treeherder))
        for platform in platforms:
            self.by_platform[platform].add(i)
        collection = treeherder.collection if treeherder else None
        kinds = (attributes.build_type, *(k for k, v in (collection or {}).items() if v))
        build_types = self._build_types.get(kinds)
        if build_types is None:
            build_types = self._build_types[kinds] = tuple(_build_types_of(attributes, treeherder))
        for build_type in build_types:
            self.by_build_type[build_type].add(i)
        for try_name in (
            attributes.unittest_try_name,
            attributes.talos_try_name,
            attributes.raptor_try_name,
        ):
            if isinstance(try_name, str):
                self.by_try_name[try_name].append(i)
        self.by_kind[entry.kind or str(attributes.kind or "")].append(i)

    def finish(self, size: int) -> TaskGraphIndex:
        """The index of everything added, read from a ``size``-byte document."""
        index = object.__new__(TaskGraphIndex)
        index.name = self.name
        index.nbytes = size
        index.labels = self.labels
        index.position = self.position
        index.entries = self.entries
        index.bodies = Bodies(self.bodies, size)
        index.symbols = self.symbols
        index.tiers = self.tiers
        index.by_symbol = dict(self.by_symbol)
        index.by_bare_symbol = dict(self.by_bare_symbol)
        index.by_platform = dict(self.by_platform)
        index.by_build_type = dict(self.by_build_type)
        index.by_try_name = dict(self.by_try_name)
        index.by_kind = dict(self.by_kind)
        index.skeleton = _SKELETONS.adopt(index)
        return index


_ATTRIBUTE_FIELDS = Attributes.__struct_fields__


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


# What a graph shares with others that have the same tasks: everything but the bodies.
SKELETON_FIELDS = (
    "labels",
    "position",
    "entries",
    "symbols",
    "tiers",
    "by_symbol",
    "by_bare_symbol",
    "by_platform",
    "by_build_type",
    "by_try_name",
    "by_kind",
    "_lines",
    "_lower",
)


class Skeleton:
    """The structures of a graph that do not depend on its bodies' bytes, shared."""

    def __init__(self, index: TaskGraphIndex) -> None:
        for name in SKELETON_FIELDS:
            setattr(self, name, getattr(index, name))
        self.tasks = len(index.labels)

    def same_as(self, index: TaskGraphIndex) -> bool:
        """Whether ``index`` built exactly these structures (compared in C, field by field:
        the entries, then what the bodies' Treeherder fields gave)."""
        return all(
            getattr(self, name) == getattr(index, name)
            for name in ("labels", "entries", "symbols", "tiers", "by_platform", "by_build_type")
        )


class _Skeletons:
    """Skeletons of the graphs alive in this process, found by their labels."""

    def __init__(self) -> None:
        # Graphs load in threads: a race here at worst leaves two equal skeletons unshared.
        self._by_labels: weakref.WeakValueDictionary[int, Skeleton] = weakref.WeakValueDictionary()

    def adopt(self, index: TaskGraphIndex) -> Skeleton:
        """``index``'s skeleton: one already known when it is the same (``index`` then
        uses that one's structures and lets its own go), else its own, made known (its
        label search structures are built then, not for a graph that shares them)."""
        key = hash("\n".join(index.labels))
        known = self._by_labels.get(key)
        if known is not None and known.same_as(index):
            for name in SKELETON_FIELDS:
                setattr(index, name, getattr(known, name))
            return known
        # Every label on its own line, so one C-level regex scan searches them all, and
        # sorted copies, so a prefix is a bisection; each also lower-cased for fzf.
        index._lines = _Lines(index.labels)
        index._lower = _Lines([label.lower() for label in index.labels])
        skeleton = Skeleton(index)
        self._by_labels[key] = skeleton
        return skeleton


_SKELETONS = _Skeletons()
