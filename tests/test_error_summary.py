"""A failed task's error summary read into its first failure lines, whatever the file holds."""

from __future__ import annotations

import json

from bot.tc.errorsummary import LINE_CHARS, first_errors, summary_names


def lines(*entries: object) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in entries)


def test_unexpected_results_crashes_and_errors_in_order_as_treeherder_shows_them() -> None:
    data = lines(
        {"action": "test_groups", "groups": ["dom/base"], "line": 0},
        {"action": "test_result", "test": "a.js", "status": "PASS", "expected": "PASS"},
        {
            "action": "test_result",
            "test": "b.js",
            "status": "FAIL",
            "expected": "PASS",
            "known_intermittent": ["FAIL"],
        },
        {
            "action": "test_result",
            "test": "c.js",
            "subtest": "loads",
            "status": "TIMEOUT",
            "expected": "PASS",
            "message": "took too long",
        },
        {"action": "crash", "test": "d.js", "signature": "nsFoo::Bar"},
        {"action": "log", "level": "WARNING", "message": "just a warning"},
        {"action": "log", "level": "ERROR", "message": "leaked 2 windows"},
        {"action": "log", "level": "ERROR", "message": "not shown: three is enough"},
    )
    assert first_errors(data) == [
        "TEST-UNEXPECTED-TIMEOUT | c.js | loads | took too long",
        "PROCESS-CRASH | d.js | application crashed [nsFoo::Bar]",
        "leaked 2 windows",
    ]


def test_hostile_or_broken_summaries_give_clean_short_lines_or_none() -> None:
    data = b"not json at all\n\xff\xfe\n[1, 2]\n" + lines(
        {"action": "log", "level": "ERROR", "message": "evil\r\nPRIVMSG #x :hi\x1b[31m `code`"},
        {"action": "log", "level": "CRITICAL", "message": "x" * 5000},
    )
    found = first_errors(data)
    assert found[0] == "evil PRIVMSG #x :hi [31m 'code'"
    assert len(found[1]) == LINE_CHARS
    assert found[1].endswith("…")
    assert first_errors(b"") == []


def test_only_error_summaries_are_read_among_a_runs_artifacts() -> None:
    listed = [
        {"name": "public/logs/live_backing.log"},
        {"name": "public/test_info/xpcshell_errorsummary.log"},
        {"name": "public/test_info/mochitest_errorsummary.log"},
        "junk",
    ]
    assert summary_names(listed) == [  # type: ignore[arg-type]
        "public/test_info/mochitest_errorsummary.log",
        "public/test_info/xpcshell_errorsummary.log",
    ]
