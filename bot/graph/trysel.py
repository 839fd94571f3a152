"""Choose the jobs that Gecko's try option syntax names, by Gecko's own rules.

The rules follow gecko_taskgraph's try_option_syntax: ``-b`` picks build types, ``-p``
build platforms, ``-u``/``-t``/``-r`` test names (``unittest_try_name``, ``talos_try_name``,
``raptor_try_name``) with chunk suffixes, aliases and ``[platform,-platform]`` limits,
``-j`` jobs by ``job_try_name``; tasks not asked for by name run when their
``run_on_projects`` has ``all``. What differs: an unknown platform or build type is a
clear error with suggestions, and "ride-along" builds (a graph_config setting) are not added.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.graph.errors import Problem, ResolveError
from bot.graph.index import TaskGraphIndex
from grammar import TestSpec, TryOptions

BUILD_KINDS = frozenset({"build", "artifact-build", "hazard", "l10n", "valgrind", "spidermonkey"})
CHUNK_SUFFIX = re.compile(r"(.*)-([0-9]+)$")


def _prefix(text: str) -> Callable[[str], bool]:
    return lambda name: name.startswith(text)


def _contains(text: str) -> Callable[[str], bool]:
    return lambda name: text in name


def _regex(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda name: compiled.match(name) is not None


# Shorthands usable with -u, and which try names each stands for.
UNITTEST_ALIASES: dict[str, Callable[[str], bool]] = {
    **{
        name: _prefix(name)
        for name in (
            "cppunit",
            "crashtest",
            "crashtest-e10s",
            "firefox-ui-functional",
            "gtest",
            "jittest",
            "jsreftest",
            "jsreftest-e10s",
            "marionette",
            "mochitest",
            "mochitest-e10s",
            "mochitest-browser-chrome",
            "mochitest-gpu",
            "mochitest-gpu-e10s",
            "mochitest-media",
            "mochitest-media-e10s",
            "robocop",
            "web-platform-tests",
            "web-platform-tests-e10s",
            "web-platform-tests-print-reftest",
            "web-platform-tests-wdspec",
            "web-platform-tests-wdspec-e10s",
            "xpcshell",
        )
    },
    "e10s": _contains("e10s"),
    "gaia-js-integration": _contains("gaia-js-integration"),
    "jittests": _prefix("jittest"),
    "mochitests": _prefix("mochitest"),
    "mochitests-e10s": _prefix("mochitest-e10s"),
    "mochitest-debug": _prefix("mochitest-debug-"),
    "mochitest-a11y": _contains("mochitest-a11y"),
    "mochitest-bc": _prefix("mochitest-browser-chrome"),
    "mochitest-e10s-bc": _prefix("mochitest-browser-chrome-e10s"),
    "mochitest-e10s-browser-chrome": _prefix("mochitest-browser-chrome-e10s"),
    "mochitest-chrome": _contains("mochitest-chrome"),
    "mochitest-dt": _prefix("mochitest-devtools-chrome"),
    "mochitest-e10s-dt": _prefix("mochitest-devtools-chrome-e10s"),
    "mochitest-gl": _prefix("mochitest-webgl"),
    "mochitest-gl-e10s": _prefix("mochitest-webgl-e10s"),
    "mochitest-vg": _prefix("mochitest-valgrind"),
    "reftest": _regex(r"^(plain-)?reftest.*$"),
    "reftest-no-accel": _regex(r"^(plain-)?reftest-no-accel.*$"),
    "reftests": _regex(r"^(plain-)?reftest.*$"),
    "reftests-e10s": _regex(r"^(plain-)?reftest-e10s.*$"),
    "web-platform-test": _prefix("web-platform-tests"),
    "web-platform-tests-crashtests": _prefix("web-platform-tests-crashtest"),
    "web-platform-tests-reftests": _prefix("web-platform-tests-reftest"),
    "web-platform-tests-reftests-e10s": _prefix("web-platform-tests-reftest-e10s"),
}

# Old Buildbot-style names usable inside [...], and the test platforms each means.
PRETTY_PLATFORMS: dict[str, tuple[str, ...]] = {
    "Ubuntu": ("linux32", "linux64", "linux64-asan", "linux1804-64", "linux1804-64-asan"),
    "x64": ("linux64", "linux64-asan", "linux1804-64", "linux1804-64-asan"),
    "Windows 10": ("windows10-64",),
}

UNKNOWN_PLATFORM = "`{name}` is not a platform of this push (-p)."
UNKNOWN_BUILD_TYPE = "no job of this push is a `{name}` build (-b)."


@dataclass
class _Wanted:
    """One test name asked for: maybe only some chunks, maybe only some platforms."""

    name: str
    platforms: list[str] | None = None
    chunks: set[str] | None = field(default=None)


def _platform_list(spec: TestSpec, all_platforms: set[str]) -> list[str] | None:
    if not spec.platforms:
        return None
    chosen: list[str] = sorted(all_platforms) if spec.platforms[0].negated else []
    for restriction in spec.platforms:
        names = PRETTY_PLATFORMS.get(restriction.platform, (restriction.platform,))
        if restriction.negated:
            chosen = [p for p in chosen if p not in names]
        else:
            chosen.extend(names)
    return chosen


def _wanted_tests(
    selection: tuple[TestSpec, ...] | None, names: set[str], all_platforms: set[str]
) -> list[_Wanted]:
    """Gecko's expansion of ``all``, chunk suffixes and aliases, one entry per test name."""
    if selection is None:
        selection = (TestSpec("all"),)
    entries: list[_Wanted] = []
    if selection and selection[0].name == "all":
        platforms = _platform_list(selection[0], all_platforms)
        entries = [_Wanted(n, platforms) for n in names]
    else:
        entries = [_Wanted(s.name, _platform_list(s, all_platforms)) for s in selection]
    results: list[_Wanted] = []
    seen_chunks: dict[str, set[str]] = {}
    for wanted in entries:
        match = CHUNK_SUFFIX.match(wanted.name)
        if match:
            name, chunk = match[1], match[2]
            if name in seen_chunks:
                seen_chunks[name].add(chunk)
                continue
            seen_chunks[name] = {chunk}
            results.append(_Wanted(name, wanted.platforms, seen_chunks[name]))
        elif wanted.name in UNITTEST_ALIASES:
            alias = UNITTEST_ALIASES[wanted.name]
            results.extend(_Wanted(n, wanted.platforms) for n in sorted(names) if alias(n))
        else:
            results.append(wanted)
    return list({w.name: w for w in results}.values())


class TrySelector:
    """Applies one set of try options to one graph."""

    def __init__(self, index: TaskGraphIndex, options: TryOptions) -> None:
        self.index = index
        self.options = options
        attributes = [e.attributes for e in index.entries]
        self.test_platforms = {
            str(a["test_platform"]).split("/")[0] for a in attributes if "test_platform" in a
        }
        build_platforms = {str(a["build_platform"]) for a in attributes if "build_platform" in a}
        build_types = {str(a["build_type"]) for a in attributes if "build_type" in a}
        problems = [
            Problem(b, UNKNOWN_BUILD_TYPE.format(name=b))
            for b in options.build_types
            if b not in build_types
        ]
        known = self.test_platforms | build_platforms
        self.platforms = options.platforms
        if self.platforms is not None:
            for name in self.platforms:
                if name not in known:
                    close = tuple(difflib.get_close_matches(name, sorted(known), n=3))
                    problems.append(Problem(name, UNKNOWN_PLATFORM.format(name=name), close))
        if problems:
            raise ResolveError(tuple(problems))
        self.tests: dict[str, dict[str, _Wanted]] = {}
        for attr, selection in (
            ("unittest_try_name", options.unittests),
            ("talos_try_name", options.talos),
            ("raptor_try_name", options.raptor),
        ):
            names = {str(a[attr]) for a in attributes if attr in a}
            wanted = _wanted_tests(selection, names, self.test_platforms) if selection != () else []
            self.tests[attr] = {w.name: w for w in wanted}
        self.test_tiers: defaultdict[str, set[int | None]] = defaultdict(set)
        for i, a in enumerate(attributes):
            if a.get("kind") == "test" or index.entries[i].kind == "test":
                self.test_tiers[str(a.get("unittest_try_name"))].add(index.tiers[i])

    def labels(self) -> list[str]:
        return [label for i, label in enumerate(self.index.labels) if self.matches(i)]

    def _runs_by_default(self, i: int) -> bool:
        return "all" in (self.index.attribute(i, "run_on_projects") or [])

    def _match_test(self, i: int, attr: str) -> bool:
        get = self.index.entries[i].attributes.get
        if get("build_type") not in self.options.build_types:
            return False
        if self.platforms is not None and get("build_platform") not in self.platforms:
            return False
        wanted = self.tests[attr].get(str(get(attr)))
        if wanted is None:
            return False
        if wanted.chunks is not None and str(get("test_chunk")) not in wanted.chunks:
            return False
        if wanted.platforms is not None:
            return (
                "all" in wanted.platforms
                or str(get("test_platform", "")).split("/")[0] in wanted.platforms
            )
        tier = self.index.tiers[i]
        if tier is not None and tier != 1:
            build = self.index.entries[i].dependencies.get("build")
            build_tier = None
            if build is not None and build in self.index:
                build_tier = self.index.tiers[self.index.position[build]]
            if build_tier is not None and tier <= build_tier:
                return True
            return 1 not in self.test_tiers[str(get("unittest_try_name"))]
        return self._runs_by_default(i)

    def matches(self, i: int) -> bool:
        entry = self.index.entries[i]
        get = entry.attributes.get
        kind = get("kind") or entry.kind
        if get("job_try_name"):
            if self.options.jobs is not None:
                return get("job_try_name") in self.options.jobs
            if self.platforms is not None and get("build_platform") not in self.platforms:
                return False
            return self._runs_by_default(i)
        if kind == "test":
            return any(self._match_test(i, a) for a in self.tests)
        if kind in BUILD_KINDS:
            if get("build_type") not in self.options.build_types:
                return False
            if self.platforms is None:
                return self._runs_by_default(i)
            return get("build_platform") in self.platforms
        return False


def select_try(index: TaskGraphIndex, options: TryOptions) -> list[str]:
    """The labels the try options select on this graph, in graph order."""
    return TrySelector(index, options).labels()
