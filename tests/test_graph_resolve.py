"""Job names to labels: labels, symbols, suites and chunks, globs, fzf queries, filters."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from bot.graph import ResolveError, Resolver
from grammar import (
    Glob,
    Label,
    Name,
    PlatformFilter,
    Query,
    Schedule,
    Symbol,
    TaskId,
    parse_command,
)
from tests.graphs import gecko_index, gecko_push, translations_graph, translations_index


def tasks() -> dict[str, dict[str, Any]]:
    return gecko_push().graph


def where(predicate: Any) -> set[str]:
    return {label for label, task in tasks().items() if predicate(task)}


def treeherder(task: dict[str, Any]) -> dict[str, Any]:
    return task["task"]["extra"]["treeherder"]


def resolve(text: str, limit: int = 50) -> set[str]:
    command = parse_command(text)
    assert isinstance(command, Schedule)
    resolver = Resolver(gecko_index(), command.filters, shortlist_limit=limit)
    return set(resolver.resolve(command.selectors).labels)


def test_exact_label() -> None:
    label = next(label for label in tasks() if label.startswith("test-"))
    assert resolve(f"schedule {label}") == {label}


def test_symbol_with_group_and_filters() -> None:
    sample = next(t for t in tasks().values() if treeherder(t).get("groupSymbol") == "M")
    group, symbol = treeherder(sample)["groupSymbol"], treeherder(sample)["symbol"]
    platform = treeherder(sample)["machine"]["platform"]
    (build_type,) = treeherder(sample)["collection"]
    expected = where(
        lambda t: (
            treeherder(t).get("groupSymbol") == group
            and treeherder(t)["symbol"] == symbol
            and treeherder(t)["machine"]["platform"] == platform
            and build_type in treeherder(t)["collection"]
        )
    )
    assert sample["label"] in expected
    assert resolve(f"schedule {group}({symbol}) for {platform}/{build_type}") == expected


def test_suite_and_chunk_on_a_build_platform() -> None:
    expected = where(
        lambda t: (
            t["attributes"].get("unittest_try_name") == "mochitest-browser-chrome"
            and t["attributes"].get("test_chunk") == "3"
            and t["attributes"]["build_platform"] == "linux64"
            and t["attributes"]["build_type"] == "debug"
        )
    )
    assert expected
    assert resolve("schedule mochitest-browser-chrome-3 for linux64 debug") == expected


def test_suite_without_chunk_means_every_chunk() -> None:
    expected = where(
        lambda t: (
            t["attributes"].get("unittest_try_name") == "xpcshell"
            and t["attributes"].get("test_platform") == "windows11-64-2009-qr/opt"
        )
    )
    assert len(expected) > 1
    assert resolve("schedule xpcshell for windows11-64-2009-qr/opt") == expected


def test_glob_is_shell_style_and_case_sensitive() -> None:
    sample = next(label for label in tasks() if "-mochitest-plain-" in label)
    pattern = sample.split("-mochitest-plain-")[0] + "-mochitest-plain-*"
    expected = {label for label in tasks() if fnmatch.fnmatchcase(label, pattern)}
    assert expected
    assert resolve(f"schedule {pattern}") == expected
    assert resolve("schedule build-linux64?debug") == {"build-linux64/debug"}
    assert resolve("schedule build-linux64/[od]*") == {"build-linux64/opt", "build-linux64/debug"}
    assert resolve("schedule build-linux64/[!o]*") == {"build-linux64/debug"}
    with pytest.raises(ResolveError):
        resolve("schedule BUILD-LINUX64/*")


@pytest.mark.parametrize(
    ("query", "predicate"),
    [
        ("'xpcshell 'asan", lambda label: "xpcshell" in label and "asan" in label),
        ("^build- debug$", lambda label: label.startswith("build-") and label.endswith("debug")),
        ("^build- !debug", lambda label: label.startswith("build-") and "debug" not in label),
        (
            "^build- linux | macosx !shippable",
            lambda label: (
                label.startswith("build-")
                and ("linux" in label or "macosx" in label)
                and "shippable" not in label
            ),
        ),
        # fuzzy: the letters in order, case-insensitive without capitals
        ("bldlnx64dbg", lambda label: _fuzzy("bldlnx64dbg", label.lower())),
        ("^toolchain- CLANG", lambda label: False),  # smart case: a capital matches case
    ],
)
def test_fzf_queries(query: str, predicate: Any) -> None:
    expected = {label for label in tasks() if predicate(label)}
    if not expected:
        with pytest.raises(ResolveError, match="matches no job"):
            resolve(f'schedule "{query}"', limit=10**6)
        return
    assert resolve(f'schedule "{query}"', limit=10**6) == expected


def _fuzzy(needle: str, haystack: str) -> bool:
    position = 0
    for char in needle:
        position = haystack.find(char, position) + 1
        if not position:
            return False
    return True


def test_a_name_matching_too_many_jobs_gets_a_shortlist() -> None:
    with pytest.raises(ResolveError) as caught:
        resolve("schedule mochitest-plain")
    (problem,) = caught.value.problems
    assert problem.ambiguous
    assert caught.value.ambiguous_only
    assert problem.total > 50
    assert len(problem.shortlist) == 10
    assert "1. " in problem.describe()
    assert f"… and {problem.total - 10} more" in problem.describe()
    # asked with a glob, the same jobs are all wanted: no shortlist
    assert len(resolve("schedule test-*-mochitest-plain*")) >= problem.total


def test_unknown_job_gets_suggestions_within_the_filters() -> None:
    with pytest.raises(ResolveError) as caught:
        resolve("schedule mochitest-browser-chrom-3 for linux64")
    (problem,) = caught.value.problems
    assert not problem.ambiguous
    assert "matches no job for `linux64`" in problem.message
    assert problem.suggestions
    assert all("mochitest-browser-chrome" in s for s in problem.suggestions[:2])


def test_filtered_out_says_so() -> None:
    with pytest.raises(ResolveError) as caught:
        resolve("schedule build-linux64/debug for win64")
    (problem,) = caught.value.problems
    assert problem.message == "`build-linux64/debug` matches 1 job, but none for `win64`."
    assert problem.suggestions == ("for linux64/debug",)  # where it does run


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ResolveError) as caught:
        resolve("schedule nosuchjob-1 build-linux64/debug othermissing")
    assert [p.selector for p in caught.value.problems] == ["nosuchjob-1", "othermissing"]


def test_task_ids_are_not_jobs() -> None:
    resolver = Resolver(gecko_index())
    with pytest.raises(ResolveError, match="taskId"):
        resolver.resolve([TaskId("abcdefghQRCdefghijklmA")])


def test_selectors_on_the_real_graph() -> None:
    graph = translations_graph()
    resolver = Resolver(translations_index())
    assert resolver.resolve([Label("train-backwards-en-fi")]).labels == ("train-backwards-en-fi",)
    # its only Treeherder symbols are on fetch and docker-image tasks
    fetches = {
        label
        for label, task in graph.items()
        if task["task"].get("extra", {}).get("treeherder", {}).get("groupSymbol") == "Fetch"
        and task["task"]["extra"]["treeherder"]["symbol"] == "cuda"
    }
    assert resolver.resolve([Symbol("Fetch", "cuda")]).labels == tuple(sorted(fetches))
    assert set(resolver.resolve([Glob("evaluate-teacher-*-1/2")]).labels) == {
        label for label in graph if fnmatch.fnmatchcase(label, "evaluate-teacher-*-1/2")
    }
    assert resolver.resolve(
        [Name("toolchain")],
    ).labels == tuple(sorted(label for label, task in graph.items() if task["kind"] == "toolchain"))
    queried = set(resolver.resolve([Query("^train- !teacher")]).labels)
    assert queried == {x for x in graph if x.startswith("train-") and "teacher" not in x}


def test_filters_match_any_platform_field() -> None:
    index = gecko_index()
    by_machine = Resolver(index, [PlatformFilter("android-em-7-0-x86_64-qr", "opt")])
    by_test_platform = Resolver(index, [PlatformFilter("android-em-7.0-x86_64-qr", "opt")])
    by_build_platform = Resolver(index, [PlatformFilter("android-x86_64", "opt")])
    selector = [Glob("test-*")]
    machine = set(by_machine.resolve(selector).labels)
    assert machine == set(by_test_platform.resolve(selector).labels)
    assert machine == set(by_build_platform.resolve(selector).labels)
