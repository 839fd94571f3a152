"""Try syntax chooses jobs by Gecko's rules, on a Gecko-shaped graph."""

from __future__ import annotations

from typing import Any

import pytest

from bot.graph import ResolveError, select_try
from grammar import Try, parse_command
from tests.graphs import gecko_index, gecko_push


def chosen(text: str) -> set[str]:
    command = parse_command(text)
    assert isinstance(command, Try)
    return set(select_try(gecko_index(), command.options))


def tasks_where(predicate: Any) -> set[str]:
    return {
        label for label, task in gecko_push().graph.items() if predicate(task["attributes"], task)
    }


def is_tier_one(task: dict[str, Any]) -> bool:
    return bool(task["task"]["extra"]["treeherder"]["tier"] == 1)


def test_build_platform_and_one_chunk() -> None:
    sample = next(
        t["attributes"]
        for t in gecko_push().graph.values()
        if t["attributes"]["kind"] == "test"
        and t["attributes"]["total_chunks"] > 2
        and is_tier_one(t)
    )
    platform, build, suite = (
        sample["build_platform"],
        sample["build_type"],
        sample["unittest_try_name"],
    )
    chunk = sample["test_chunk"]
    expected = {f"build-{platform}/{build}"} | tasks_where(
        lambda a, t: (
            a["kind"] == "test"
            and a["build_platform"] == platform
            and a["build_type"] == build
            and a["unittest_try_name"] == suite
            and a["test_chunk"] == chunk
            and is_tier_one(t)
        )
    )
    assert len(expected) > 1
    letter = build[0]
    assert chosen(f"try: -b {letter} -p {platform} -u {suite}-{chunk} -t none") == expected


def test_builds_only() -> None:
    expected = tasks_where(lambda a, t: a["kind"] == "build" and a["build_type"] == "opt")
    assert chosen("try: -b o -p all -u none") == expected


def test_several_chunks_of_one_suite() -> None:
    expected = tasks_where(
        lambda a, t: (
            a["kind"] == "test"
            and a["build_type"] == "opt"
            and a["unittest_try_name"] == "xpcshell"
            and a["test_chunk"] in ("1", "3")
            and is_tier_one(t)
        )
    )
    got = chosen("try: -b o -u xpcshell-1,xpcshell-3") - tasks_where(
        lambda a, t: a["kind"] == "build"
    )
    assert got == expected


def test_platform_restrictions_in_brackets() -> None:
    windows = "windows11-64-2009-qr"
    expected = tasks_where(
        lambda a, t: (
            a["kind"] == "test"
            and a["unittest_try_name"] == "xpcshell"
            and a["test_platform"].split("/")[0] != windows
        )
    )
    got = chosen(f"try: -b do -u xpcshell[-{windows}]") - tasks_where(
        lambda a, t: a["kind"] == "build"
    )
    assert got == expected
    only = chosen(f"try: -b do -u xpcshell[{windows}]") - tasks_where(
        lambda a, t: a["kind"] == "build"
    )
    assert only == {label for label in expected if False} | tasks_where(
        lambda a, t: (
            a["kind"] == "test"
            and a["unittest_try_name"] == "xpcshell"
            and a["test_platform"].split("/")[0] == windows
        )
    )


def test_aliases_expand() -> None:
    expected = tasks_where(
        lambda a, t: (
            a["kind"] == "test"
            and a["build_type"] == "debug"
            and a["unittest_try_name"].startswith("mochitest")
            and is_tier_one(t)
        )
    )
    got = chosen("try: -b d -u mochitests") - tasks_where(lambda a, t: a["kind"] == "build")
    assert got == expected


def test_unknown_platform_and_build_type_are_errors_with_suggestions() -> None:
    with pytest.raises(ResolveError) as caught:
        chosen("try: -b d -p linux46")
    (problem,) = caught.value.problems
    assert "`linux46` is not a platform" in problem.message
    assert "linux64" in problem.suggestions
    index = gecko_index()
    opt_only = parse_command("try: -b do -p linux64-asan")
    assert isinstance(opt_only, Try)
    assert select_try(index, opt_only.options)  # asan has opt builds only: fine
