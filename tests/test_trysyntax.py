"""Gecko's try option syntax: the options, their defaults and quoting, as Gecko reads them."""

from __future__ import annotations

import pytest

from grammar import (
    ParseError,
    PlatformRestriction,
    Revision,
    TestSpec,
    Try,
    TryOptions,
    parse_command,
)


def options(text: str) -> TryOptions:
    command = parse_command(text)
    assert isinstance(command, Try)
    # whatever was parsed writes back to text that parses to the same command
    assert parse_command(command.canonical()) == command
    return command.options


def test_defaults_are_geckos() -> None:
    # -p and -u default to all, -t and -r to none, --rebuild to 1 (gecko's argparse setup)
    got = options("try: -b o")
    assert got == TryOptions(build_types=("opt",))
    assert got.platforms is None
    assert got.unittests is None
    assert got.talos == ()
    assert got.raptor == ()
    assert got.rebuild == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("try: -b o", ("opt",)),
        ("try: -b d", ("debug",)),
        ("try: -b do", ("debug", "opt")),
        ("try: -b od", ("opt", "debug")),
        ("try: -b dd", ("debug",)),
        ("try: -bdo", ("debug", "opt")),
        ("try: --build do", ("debug", "opt")),
        ("try: --build=o", ("opt",)),
        ("try:-b d", ("debug",)),
        ("TRY: -b d", ("debug",)),
        ("try: -b o -b d", ("debug",)),  # the last one wins, as with argparse
    ],
)
def test_build_types(text: str, expected: tuple[str, ...]) -> None:
    assert options(text).build_types == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("try: -b do -p all", None),
        ("try: -b do -p", None),
        ("try: -b do -p -u all", None),
        ("try: -b do -p none", ()),
        ("try: -b do -p linux64", ("linux64",)),
        ("try: -b do -p linux,linux64,macosx64", ("linux", "linux64", "macosx64")),
        ("try: -b do --platform=win64", ("win64",)),
        ("try: -b do -plinux64", ("linux64",)),
        ("try: -b do -p linux64 -p win64", ("win64",)),
    ],
)
def test_platforms(text: str, expected: tuple[str, ...] | None) -> None:
    assert options(text).platforms == expected


def spec(name: str, *platforms: str) -> TestSpec:
    return TestSpec(
        name,
        tuple(PlatformRestriction(p.lstrip("-"), p.startswith("-")) for p in platforms),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("try: -b o -u", None),
        ("try: -b o -u all", None),
        ("try: -b o -u none", ()),
        ("try: -b o -u mochitest-1", (spec("mochitest-1"),)),
        ("try: -b o -u mochitest-1,mochitest-3", (spec("mochitest-1"), spec("mochitest-3"))),
        ("try: -b o -u crashtest,jsreftest", (spec("crashtest"), spec("jsreftest"))),
        ("try: -b o -u mochitest-1[linux64]", (spec("mochitest-1", "linux64"),)),
        (
            "try: -b o -u mochitest-1[linux64,-windows10-64],xpcshell",
            (spec("mochitest-1", "linux64", "-windows10-64"), spec("xpcshell")),
        ),
        # Gecko lets spaces stand inside brackets without quoting
        ("try: -b o -u reftest[Windows 10]", (spec("reftest", "Windows 10"),)),
        ('try: -b o -u "reftest[Windows 10, x64]"', (spec("reftest", "Windows 10", "x64"),)),
        ("try: -b o -u 'reftest[-Ubuntu]'", (spec("reftest", "-Ubuntu"),)),
        ("try: -b o -u all[linux64]", (spec("all", "linux64"),)),
        ("try: -b o --unittests=xpcshell", (spec("xpcshell"),)),
    ],
)
def test_unittests(text: str, expected: tuple[TestSpec, ...] | None) -> None:
    assert options(text).unittests == expected


def test_chunks_of_test_specs() -> None:
    (first, second) = options("try: -b o -u mochitest-browser-chrome-12,xpcshell").unittests or ()
    assert (first.suite, first.chunk) == ("mochitest-browser-chrome", 12)
    assert (second.suite, second.chunk) == ("xpcshell", None)


def test_talos_and_raptor() -> None:
    got = options("try: -b o -t chromez,dromaeojs[linux64] -r tp6")
    assert got.talos == (spec("chromez"), spec("dromaeojs", "linux64"))
    assert got.raptor == (spec("tp6"),)
    assert options("try: -b o -t").talos is None  # const "all"
    assert options("try: -b o -t none").talos == ()


def test_jobs_accumulate() -> None:
    assert options("try: -j android-lint,flake8 -j eslint").jobs == (
        "android-lint",
        "flake8",
        "eslint",
    )
    assert options("try: -j all").jobs is None
    assert options("try: -b o -j none").jobs == ()


def test_counts_switches_and_settings() -> None:
    got = options(
        "try: -b d --rebuild 5 --rebuild-talos 3 --rebuild-raptor 2 --artifact --no-retry "
        "-i --gecko-profile --include-nightly --tag devtools "
        "--setenv MOZ_LOG=cookie:5 --setenv 'EXTRA=a b'"
    )
    assert (got.rebuild, got.rebuild_talos, got.rebuild_raptor) == (5, 3, 2)
    switches = (got.artifact, got.no_retry, got.interactive, got.gecko_profile)
    assert switches == (True, True, True, True)
    assert got.include_nightly
    assert got.tag == "devtools"
    assert got.env == (("MOZ_LOG", "cookie:5"), ("EXTRA", "a b"))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("-e", "all"),
        ("--all-emails", "all"),
        ("-f", "failure"),
        ("-e -f", "failure"),
        ("-f -e", "all"),
    ],
)
def test_notifications_last_wins(flags: str, expected: str) -> None:
    assert options(f"try: -b o {flags}").notifications == expected


def test_revision_and_dry_run_around_try_syntax() -> None:
    command = parse_command("try: -b do -p linux64 -u mochitest-1 on autoland@abc123f --dry-run")
    assert isinstance(command, Try)
    assert command.revision == Revision("abc123f", "autoland")
    assert command.dry_run
    assert command.options.platforms == ("linux64",)


def test_shell_quoting() -> None:
    assert options("try: -b o --tag 'a b'").tag == "a b"
    assert options('try: -b o --tag "a \\"b\\""').tag == 'a "b"'
    assert options("try: -b o --tag a\\ b").tag == "a b"
    assert options("try: -b o --tag pre'quoted part'post").tag == "prequoted partpost"


@pytest.mark.parametrize(
    ("text", "column", "words", "suggestion"),
    [
        ("try: -b x", 9, "`-b` takes `o` (opt), `d` (debug)", None),
        ("try: -b -p linux64", 9, "`-b` needs a value", None),
        ("try: -b", 8, "`-b` needs a value", None),
        ("try: -p linux64", 16, "selects nothing", "try: -p linux64 -b do"),
        ("try:", 5, "selects nothing", "try: -b do"),
        ("try: -b do --rebuld 3", 12, "not a try option", "try: -b do --rebuild 3"),
        ("try: -b do --artefact", 12, "not a try option", "try: -b do --artifact"),
        ("try: -b do -z", 12, "not a try option", None),
        ("try: -b do --rebuild 0", 22, "from 1 to 20", None),
        ("try: -b do --rebuild 21", 22, "from 1 to 20", None),
        ("try: -b do --rebuild many", 22, "from 1 to 20", None),
        ("try: -b do --setenv FOO", 21, "NAME=VALUE", None),
        ("try: -b do --setenv =x", 21, "NAME=VALUE", None),
        ("try: -b do mochitest", 12, "does not fit here", None),
        ("try: -b do -u mochitest-1[linux64", 26, "could not be read at `[linux64`", None),
        ("try: -b do -u 'mochitest,,x'", 15, "could not be read", None),
        ("try: -b do -j all,eslint", 12, "not a mix", None),
        ("try: -b do --tag 'open", 18, "never closed", "try: -b do --tag 'open'"),
    ],
)
def test_try_errors(text: str, column: int, words: str, suggestion: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(text)
    assert words in caught.value.message
    assert caught.value.column == column, caught.value.render()
    assert caught.value.suggestion == suggestion
