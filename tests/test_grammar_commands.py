"""Every verb, alias, selector form, revision form and clause, parsed to the exact command."""

from __future__ import annotations

import pytest

from grammar import (
    Approve,
    Cancel,
    Confirm,
    Glob,
    Help,
    Jobs,
    Label,
    More,
    Name,
    PlatformFilter,
    Query,
    RequestId,
    Retrigger,
    Revision,
    Schedule,
    Status,
    Symbol,
    TaskId,
    parse_command,
)
from grammar.vocabulary import VERBS

M1 = Name("mochitest-1")
TASK = "abcdefghQRCdefghijklmA"  # a valid slugid: [Q-T] at 9, [CG...] at 11, [AQgw] last


SCHEDULE_CASES = [
    ("schedule mochitest-1", Schedule((M1,))),
    (
        "schedule test-linux1804-64-qr/debug-mochitest-browser-chrome-3",
        Schedule((Label("test-linux1804-64-qr/debug-mochitest-browser-chrome-3"),)),
    ),
    (
        "schedule test-*/debug-mochitest-plain-*",
        Schedule((Glob("test-*/debug-mochitest-plain-*"),)),
    ),
    ("schedule build-linux64?debug", Schedule((Glob("build-linux64?debug"),))),
    ("schedule test-linux64/[od]*-xpcshell", Schedule((Glob("test-linux64/[od]*-xpcshell"),))),
    ("schedule M(bc3)", Schedule((Symbol("M", "bc3"),))),
    ("schedule R(R4)", Schedule((Symbol("R", "R4"),))),
    ("schedule Fxfn-l(en-US)", Schedule((Symbol("Fxfn-l", "en-US"),))),
    ("schedule bc3", Schedule((Name("bc3"),))),
    ("schedule mochitest-browser-chrome", Schedule((Name("mochitest-browser-chrome"),))),
    ("schedule reftest-4", Schedule((Name("reftest-4"),))),
    ("schedule xpcshell", Schedule((Name("xpcshell"),))),
    ("schedule 'mochitest !asan linux64$'", Schedule((Query("mochitest !asan linux64$"),))),
    ('schedule "mochitest \'exact !asan"', Schedule((Query("mochitest 'exact !asan"),))),
    ('schedule "say \\"hi\\""', Schedule((Query('say "hi"'),))),
    ("schedule “mochitest linux64”", Schedule((Query("mochitest linux64"),))),
    ("schedule ‘mochitest linux64’", Schedule((Query("mochitest linux64"),))),
    ("schedule\xa0mochitest-1", Schedule((M1,))),
    # separators: commas, spaces, "and"
    (
        "schedule mochitest-1, reftest-4 M(bc3) and xpcshell",
        Schedule((M1, Name("reftest-4"), Symbol("M", "bc3"), Name("xpcshell"))),
    ),
    ("schedule mochitest-1,reftest-4", Schedule((M1, Name("reftest-4")))),
    ("schedule mochitest-1 mochitest-1", Schedule((M1,))),
    # Markdown code spans around a job are not part of it
    ("schedule `mochitest-1`", Schedule((M1,))),
    # clauses, in any order
    ("schedule mochitest-1 on abc123f", Schedule((M1,), Revision("abc123f"))),
    ("schedule mochitest-1 x3", Schedule((M1,), times=3)),
    ("schedule mochitest-1 ×3", Schedule((M1,), times=3)),
    ("schedule mochitest-1 times 3", Schedule((M1,), times=3)),
    ("schedule mochitest-1 --dry-run", Schedule((M1,), dry_run=True)),
    ("schedule mochitest-1 —dry-run", Schedule((M1,), dry_run=True)),
    ("schedule mochitest-1 preview", Schedule((M1,), dry_run=True)),
    ("schedule mochitest-1 -n", Schedule((M1,), dry_run=True)),
    ("schedule mochitest-1 --preview", Schedule((M1,), dry_run=True)),
    (
        "schedule x2 --dry-run mochitest-1 for linux64 on autoland@abc123f",
        Schedule(
            (M1,), Revision("abc123f", "autoland"), (PlatformFilter("linux64"),), 2, dry_run=True
        ),
    ),
    # the brief's own example
    (
        "schedule mochitest-browser-chrome-3 for linux64 debug",
        Schedule(
            (Name("mochitest-browser-chrome-3"),), filters=(PlatformFilter("linux64", "debug"),)
        ),
    ),
    # an uppercase X3 is a Treeherder symbol, a lowercase x3 a count
    ("schedule X3 x3", Schedule((Name("X3"),), times=3)),
]

FILTER_CASES = [
    ("for linux64", (PlatformFilter("linux64"),)),
    ("for debug", (PlatformFilter(None, "debug"),)),
    ("for linux64/debug", (PlatformFilter("linux64", "debug"),)),
    ("for linux1804-64-qr/debug", (PlatformFilter("linux1804-64-qr", "debug"),)),
    ("for linux64 debug", (PlatformFilter("linux64", "debug"),)),
    ("for Debug", (PlatformFilter(None, "debug"),)),
    (
        "for linux64, windows11-64 asan",
        (PlatformFilter("linux64", "asan"), PlatformFilter("windows11-64", "asan")),
    ),
    (
        "for linux64 opt debug",
        (PlatformFilter("linux64", "opt"), PlatformFilter("linux64", "debug")),
    ),
    (
        "for windows11-64/opt macosx1015-64",
        (PlatformFilter("windows11-64", "opt"), PlatformFilter("macosx1015-64")),
    ),
    ("for android-em-7.0-x86_64/debug", (PlatformFilter("android-em-7.0-x86_64", "debug"),)),
    *[(f"for {b}", (PlatformFilter(None, b),)) for b in ("tsan", "ccov", "pgo", "shippable")],
]

REVISION_CASES = [
    ("abc123f", Revision("abc123f")),
    ("ABC123F", Revision("abc123f")),
    (
        "0123456789abcdef0123456789abcdef01234567",
        Revision("0123456789abcdef0123456789abcdef01234567"),
    ),
    ("autoland@abc123f", Revision("abc123f", "autoland")),
    ("autoland:abc123f", Revision("abc123f", "autoland")),
    ("mozilla-central@abc123f", Revision("abc123f", "mozilla-central")),
    ("mozilla/translations@abc123f", Revision("abc123f", "mozilla/translations")),
    ("tip", Revision()),
    ("latest", Revision()),
    ("try@tip", Revision(None, "try")),
    ("autoland", Revision(None, "autoland")),
    ("comm-esr115", Revision(None, "comm-esr115")),
]

OTHER_CASES = [
    ("retrigger mochitest-1", Retrigger((M1,))),
    ("retrigger failed", Retrigger(failed=True)),
    ("retrigger failed x3", Retrigger(failed=True, times=3)),
    (
        "retrigger failed on abc123f x3",
        Retrigger(failed=True, revision=Revision("abc123f"), times=3),
    ),
    ("retrigger failed M(bc*)", Retrigger((Glob("M(bc*)"),), failed=True)),
    (f"retrigger {TASK}", Retrigger((TaskId(TASK),))),
    (f"retrigger {TASK}, M(bc3) x2", Retrigger((TaskId(TASK), Symbol("M", "bc3")), times=2)),
    # a taskId may begin with "-": it is still a taskId, not an option
    ("retrigger -bcdefghQRCdefghijklmA", Retrigger((TaskId("-bcdefghQRCdefghijklmA"),))),
    ("cancel -bcdefghQRCdefghijklmA", Cancel((TaskId("-bcdefghQRCdefghijklmA"),))),
    (
        "retrigger failed for windows11-64",
        Retrigger(failed=True, filters=(PlatformFilter("windows11-64"),)),
    ),
    ("cancel r7f3a", Cancel((RequestId("r7f3a"),))),
    (f"cancel {TASK}", Cancel((TaskId(TASK),))),
    (f"cancel r7f3a {TASK}", Cancel((RequestId("r7f3a"), TaskId(TASK)))),
    ("cancel all", Cancel(all=True)),
    ("cancel all on abc123f", Cancel(all=True, revision=Revision("abc123f"))),
    ("status", Status()),
    ("status r7f3a", Status(RequestId("r7f3a"))),
    ("status abc123f", Status(revision=Revision("abc123f"))),
    ("status autoland@abc123f", Status(revision=Revision("abc123f", "autoland"))),
    ("status on abc123f", Status(revision=Revision("abc123f"))),
    ("jobs mochitest", Jobs("mochitest")),
    ("jobs mochitest !asan 'exact ^test- debug$", Jobs("mochitest !asan 'exact ^test- debug$")),
    ("jobs bc | dt", Jobs("bc | dt")),
    ('jobs "browser chrome" on abc123f', Jobs("browser chrome", Revision("abc123f"))),
    (
        "jobs xpcshell for linux64/debug",
        Jobs("xpcshell", filters=(PlatformFilter("linux64", "debug"),)),
    ),
    ("jobs for linux64", Jobs("", filters=(PlatformFilter("linux64"),))),
    ("jobs", Jobs()),
    ("confirm r7f3a", Confirm(RequestId("r7f3a"))),
    ("help", Help()),
    ("help schedule", Help("schedule")),
    ("help rt", Help("retrigger")),
    ("help TRY", Help("try")),
    ("help selectors", Help("selectors")),
    ("help times", Help("times")),
    ("approve", Approve()),
    ("ok-to-test", Approve()),
    ("approve 0D1A26E", Approve(Revision("0d1a26e"))),
    ("approve on 0d1a26e", Approve(Revision("0d1a26e"))),
    ("more", More()),
    ("next", More()),
]


@pytest.mark.parametrize(("text", "expected"), SCHEDULE_CASES + OTHER_CASES)
def test_command(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(("clause", "expected"), FILTER_CASES)
def test_filters(clause: str, expected: tuple[PlatformFilter, ...]) -> None:
    command = parse_command(f"schedule mochitest-1 {clause}")
    assert isinstance(command, Schedule)
    assert command.filters == expected


@pytest.mark.parametrize(("text", "expected"), REVISION_CASES)
def test_revisions(text: str, expected: Revision) -> None:
    command = parse_command(f"schedule mochitest-1 on {text}")
    assert isinstance(command, Schedule)
    assert command.revision == expected


@pytest.mark.parametrize(
    ("verb", "alias"), [(verb, word) for verb, words in VERBS.items() for word in words]
)
def test_every_alias_means_its_verb(verb: str, alias: str) -> None:
    args = {
        "schedule": " mochitest-1",
        "retrigger": " failed",
        "cancel": " all",
        "rerun": " fuCPrKG2T62-4YH1tWYa7Q",
        "backfill": " mochitest-1",
        "bisect": " mochitest-1",
        "action": " confirm-failures",
        "confirm": " r7f3a",
        "try": ": -b do",
    }.get(verb, "")
    for spelling in (alias, alias.upper(), alias.capitalize()):
        command = parse_command(spelling + args)
        assert command.verb == verb, spelling


def test_suite_and_chunk_of_names() -> None:
    assert (M1.suite, M1.chunk) == ("mochitest", 1)
    browser = Name("mochitest-browser-chrome-3")
    assert (browser.suite, browser.chunk) == ("mochitest-browser-chrome", 3)
    assert (Name("xpcshell").suite, Name("xpcshell").chunk) == ("xpcshell", None)
    assert (Name("bc3").suite, Name("bc3").chunk) == ("bc3", None)


def test_keywords_do_not_swallow_longer_words() -> None:
    # ``on-call``, ``format`` and ``andromeda`` start with keywords but are job names.
    command = parse_command("schedule on-call format andromeda times-new-roman x3-suite")
    assert isinstance(command, Schedule)
    assert [s.text for s in command.selectors] == [
        "on-call",
        "format",
        "andromeda",
        "times-new-roman",
        "x3-suite",
    ]


def test_json_has_the_documented_keys_for_every_verb() -> None:
    keys = {"verb", "selectors", "revision", "project", "filters", "times", "dry_run"}
    for text in [
        "schedule M(bc3) on autoland@abc123f for linux64/debug x2 --dry-run",
        "retrigger failed",
        "cancel all",
        "status",
        "jobs x",
        "confirm r1234",
        "help",
        "try: -b do",
        "approve 0d1a26e",
    ]:
        data = parse_command(text).to_json()
        assert keys <= data.keys(), text
    data = parse_command("schedule M(bc3) on autoland@abc123f for linux64/debug x2 -n").to_json()
    assert data["selectors"] == [
        {"kind": "symbol", "text": "M(bc3)", "group": "M", "symbol": "bc3"}
    ]
    assert (data["revision"], data["project"], data["times"], data["dry_run"]) == (
        "abc123f",
        "autoland",
        2,
        True,
    )
    assert data["filters"] == [{"platform": "linux64", "build_type": "debug"}]
