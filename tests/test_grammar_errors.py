"""Errors say where (column), what went wrong in plain words, and how to fix it."""

from __future__ import annotations

import pickle

import pytest

from grammar import Limits, ParseError, parse_command

# (text, column, words the message must contain, the suggested correction or None)
ERROR_CASES = [
    ("shedule mochitest-1", 1, "`shedule` is not a command", "schedule mochitest-1"),
    ("retriger failed", 1, "`retriger` is not a command", "retrigger failed"),
    ("stauts r7f3a", 1, "not a command", "status r7f3a"),
    ("frobnicate", 1, "the commands are `schedule`", None),
    ("", 1, "no command given", None),
    ("schedule", 9, "needs at least one job", None),
    ("schedule on abc123f", 20, "needs at least one job", None),
    ("schedule mochitest-1 on", 24, "`on` needs a revision", None),
    ("schedule mochitest-1 on for linux64", 25, "Found `for`", None),
    ("schedule mochitest-1 on abc12", 25, "`abc12` has 5", None),
    ("schedule mochitest-1 on " + "a" * 41, 25, "has 41", None),
    ("schedule mochitest-1 on abc123g", 25, "`g` is not a hex digit", None),
    ("schedule mochitest-1 on autoland@xyz", 25, "`x` is not a hex digit", None),
    ("schedule mochitest-1 on a@b@c", 25, "is not a revision", None),
    (
        "schedule mochitest-1 abc123f",
        22,
        "looks like a revision",
        "schedule mochitest-1 on abc123f",
    ),
    ("schedule mochitest-1 x0", 22, "at least 1", "schedule mochitest-1"),
    ("schedule mochitest-1 x1000", 22, "at most 20", "schedule mochitest-1 x20"),
    ("schedule mochitest-1 times 21", 22, "at most 20", "schedule mochitest-1 x20"),
    ("schedule mochitest-1 times", 27, "`times` needs a number", None),
    ("schedule mochitest-1 x2 x3", 25, "repeats what column 22", None),
    ("schedule mochitest-1 on abc123f on def4567", 33, "repeats what column 22", None),
    ("schedule mochitest-1 --dryrun --dry-run", 31, "repeats", None),
    ("schedule mochitest-1 --dry", 22, "not an option", "schedule mochitest-1 --dry-run"),
    ("schedule mochitest-1 --frobnicate", 22, "not an option of `schedule`", None),
    ("schedule mochitest-1 for", 25, "`for` needs a platform", None),
    (
        "schedule mochitest-1 for linux64/dbg",
        34,
        "not a build type",
        "schedule mochitest-1 for linux64/debug",
    ),
    ("schedule mochitest-1 for debg", 26, "not a build type", "schedule mochitest-1 for debug"),
    ("schedule mochitest-1 for /debug", 26, "PLATFORM/BUILD-TYPE", None),
    ("schedule 'mochitest linux64", 10, "never closed", "schedule 'mochitest linux64'"),
    ('schedule "mochitest', 10, "never closed", 'schedule "mochitest"'),
    ("schedule ''", 10, "query is empty", None),
    ("schedule M(bc3", 10, "GROUP(SYMBOL)", None),
    ("schedule M(b c3)", 10, "GROUP(SYMBOL)", None),
    ("retrigger", 10, "Or `retrigger failed`", None),
    ("retrigger failed failed", 18, "repeats", None),
    ("cancel", 7, "a request id (`r7f3a`), a taskId, or `all`", None),
    ("cancel mochitest-1", 8, "not a request id", None),
    ("cancel all r7f3a", 8, "cancels everything", None),
    ("cancel r7f3a --force", 14, "takes no options", None),
    ("status r7f3a abc123f", 14, "does not fit here", None),
    ("status r7f3a on abc123f", 1, "not both", None),
    ("status 12345", 8, "has 5", None),
    ("confirm", 8, "needs the request id", None),
    ("confirm mochitest-1", 9, "not a request id", None),
    ("confirm r7f3a r8a8a", 15, "does not fit here", None),
    ("help shedule", 6, "no help on `shedule`", "help schedule"),
    ("help schedule now", 15, "does not fit here", None),
    ("jobs on", 8, "`on` needs a revision", None),
    ("aprove", 1, "`aprove` is not a command", "approve"),
    ("approve abc12", 9, "`abc12` has 5", None),
    ("approve 0d1a26e 1234567", 17, "repeats what column 9", None),
    ("more lines", 6, "does not fit here", None),
]


@pytest.mark.parametrize(("text", "column", "words", "suggestion"), ERROR_CASES)
def test_error(text: str, column: int, words: str, suggestion: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(text)
    error = caught.value
    assert words in error.message
    assert error.column == column, error.render()
    assert error.suggestion == suggestion
    if suggestion is not None and "x0" not in text:
        # the suggestion itself is a command the bot accepts
        parse_command(suggestion)


def test_render_points_at_the_column() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command("schedule mochitest-1 x1000")
    assert caught.value.render().splitlines() == [
        "line 1, column 22: `x1000`: at most 20 copies per request.",
        "  schedule mochitest-1 x1000",
        "                       ^^^^^",
        "Try: schedule mochitest-1 x20",
    ]
    assert caught.value.offending == "x1000"
    assert caught.value.short() == (
        "column 22: `x1000`: at most 20 copies per request. Try: schedule mochitest-1 x20"
    )


def test_render_keeps_tabs_so_the_marker_lines_up() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command("schedule\tmochitest-1 x0")
    assert caught.value.render().splitlines()[2] == "  " + " " * 8 + "\t" + " " * 12 + "^^"


def test_the_cap_on_times_is_configurable() -> None:
    assert parse_command("schedule a-1 x50", limits=Limits(max_times=50)).times == 50  # type: ignore[union-attr]
    with pytest.raises(ParseError) as caught:
        parse_command("schedule a-1 x51", limits=Limits(max_times=50))
    assert "at most 50" in caught.value.message
    assert caught.value.suggestion == "schedule a-1 x50"


def test_a_command_is_one_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command("schedule a\nschedule b")
    assert caught.value.column == 11
    assert "one line" in caught.value.message


def test_parser_internals_never_reach_the_user() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command("schedule mochitest-1 on")
    text = str(caught.value) + caught.value.render() + caught.value.short()
    for internal in ("Expected", "ParseException", "pyparsing", "Traceback", "{"):
        assert internal not in text


def test_errors_survive_pickling() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command("shedule x")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.to_json() == caught.value.to_json()
    assert str(copy) == str(caught.value)
