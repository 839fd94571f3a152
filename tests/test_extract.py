"""Finding commands in chat text: prefixes per place, one per line, quoted text never runs."""

from __future__ import annotations

import copy

import pytest

from grammar import GITHUB, IRC, Schedule, Triggers, extract_commands, parse_message
from tests.conftest import load_reference_json


def bodies(message: str, triggers: Triggers = GITHUB) -> list[str]:
    return [found.body for found in extract_commands(message, triggers)]


def test_real_comment_without_a_command_yields_nothing() -> None:
    payload = load_reference_json("github", "webhook-examples", "issue_comment.created.0.json")
    assert payload["action"] == "created"
    assert extract_commands(payload["comment"]["body"], GITHUB) == []


def test_command_in_a_real_comment_payload() -> None:
    payload = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.created.1.json")
    )
    original = payload["comment"]["body"]
    payload["comment"]["body"] = f"{original}\r\n\r\n@taskbot schedule mochitest-1 on abc123f\r\n"
    (parsed,) = parse_message(payload["comment"]["body"], GITHUB)
    assert parsed.command == parse_message("@taskbot schedule mochitest-1 on abc123f")[0].command
    assert parsed.where.line == 3
    assert parsed.where.prefix == "@taskbot "


def test_edited_comment_old_and_new_bodies() -> None:
    # issue_comment.edited carries the previous body in changes.body.from: the adapter
    # runs only the commands that were not there before; extraction gives it both lists.
    payload = copy.deepcopy(
        load_reference_json("github", "webhook-examples", "issue_comment.edited.7.json")
    )
    payload["changes"]["body"]["from"] += "\n@taskbot schedule a-1"
    payload["comment"]["body"] += "\n@taskbot schedule a-1\n@taskbot schedule b-2"
    before = set(bodies(payload["changes"]["body"]["from"]))
    after = bodies(payload["comment"]["body"])
    assert [b for b in after if b not in before] == ["schedule b-2"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("@taskbot schedule a-1", ["schedule a-1"]),
        ("@TaskBot schedule a-1", ["schedule a-1"]),
        ("@taskbot: schedule a-1", ["schedule a-1"]),
        ("@taskbot, schedule a-1", ["schedule a-1"]),
        ("@taskbot[bot] schedule a-1", ["schedule a-1"]),
        ("   @taskbot schedule a-1", ["schedule a-1"]),
        ("/schedule a-1", ["schedule a-1"]),
        ("/retrigger failed", ["retrigger failed"]),
        ("/try: -b do", ["try: -b do"]),
        # a near-miss after / is answered (with a suggestion), other words are other bots'
        ("/shedule a-1", ["shedule a-1"]),
        ("/assign @someone", []),
        ("/usr/bin/env python", []),
        # the bot is addressed only at the start of a line
        ("thanks @taskbot schedule a-1", []),
        ("@taskbotx schedule a-1", []),
        ("@taskbot-dev schedule a-1", []),
        ("email taskbot@example.com", []),
        ("@taskbot", [""]),
        # several commands, one per line, with text between them
        (
            "Please:\n@taskbot schedule a-1\nand then\n@taskbot retrigger failed x2\n",
            ["schedule a-1", "retrigger failed x2"],
        ),
        ("@taskbot schedule a-1\r\n@taskbot status\r\n", ["schedule a-1", "status"]),
    ],
)
def test_github_prefixes(message: str, expected: list[str]) -> None:
    assert bodies(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "```\n@taskbot schedule a-1\n```",
        "~~~\n@taskbot schedule a-1\n~~~",
        "````md\n```\n@taskbot schedule a-1\n```\n````",
        "```\n@taskbot schedule a-1",  # an unclosed fence runs to the end
        "    @taskbot schedule a-1",
        "\t@taskbot schedule a-1",
        "> @taskbot schedule a-1",
        ">@taskbot schedule a-1",
        "> > @taskbot schedule a-1",
        "> quoting someone:\n@taskbot schedule a-1",  # a lazy continuation is still quoted
        "<!-- @taskbot schedule a-1 -->",
        "<!--\n@taskbot schedule a-1\n-->",
        "<!-- unclosed\n@taskbot schedule a-1",
        "<!-- taskbot:request:r7f3a -->\n<!--\n/schedule a-1\n-->",
        "<!--\n    indented inside a comment\n@taskbot schedule a-1\n-->",
    ],
)
def test_quoted_code_and_hidden_commands_never_run(message: str) -> None:
    assert bodies(message) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("```\n@taskbot schedule a-1\n```\n@taskbot schedule b-2", ["schedule b-2"]),
        ("> @taskbot schedule a-1\n\n@taskbot schedule b-2", ["schedule b-2"]),
        ("<!-- note --> @taskbot schedule a-1", ["schedule a-1"]),
        ("<!-- a\nb --> @taskbot schedule a-1", ["schedule a-1"]),
        ("<!-- a\n    --> @taskbot schedule a-1", ["schedule a-1"]),
        ("@taskbot schedule a-1 <!-- why: flaky -->", ["schedule a-1"]),
        ("Run `@taskbot schedule a-1` to retry", []),
        ("```py\nx = 1\n```\n/schedule a-1", ["schedule a-1"]),
        ("``` not a fence ``` \n@taskbot schedule a-1", ["schedule a-1"]),
    ],
)
def test_text_after_quotes_and_code_still_counts(message: str, expected: list[str]) -> None:
    assert bodies(message) == expected


def test_comment_columns_are_kept_for_errors() -> None:
    (parsed,) = parse_message("<!-- x --> @taskbot schedule a-1 x0")
    assert parsed.error is not None
    assert parsed.error.column == 34
    assert parsed.error.source[parsed.error.column - 1 :].startswith("x0")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("taskbot: retrigger failed x3", ["retrigger failed x3"]),
        ("taskbot, status", ["status"]),
        ("TaskBot: status", ["status"]),
        ("!schedule a-1", ["schedule a-1"]),
        ("!rt failed", ["rt failed"]),
        ("!seen somebody", []),
        ("taskbot status", []),
        ("@taskbot status", []),
        ("/schedule a-1", []),
        ("<sheriff> taskbot: schedule a-1", []),
        # no Markdown on IRC: a ">" is just text, not a quote
        ("> taskbot: status", []),
        ("    taskbot: status", ["status"]),
    ],
)
def test_irc_prefixes(message: str, expected: list[str]) -> None:
    assert bodies(message, IRC) == expected


def test_private_messages_need_no_prefix() -> None:
    private = Triggers(address=True, bang=True, direct=True)
    assert bodies("schedule a-1\n\ntaskbot: status\n", private) == ["schedule a-1", "status"]


def test_configured_name() -> None:
    named = Triggers(names=("tcbot", "tb"), mention=True, address=True)
    assert bodies("@tcbot status\ntb: help\n@taskbot status", named) == ["status", "help"]


def test_every_command_of_a_message_is_answered_even_when_one_is_wrong() -> None:
    results = parse_message("@taskbot schedule a-1\n@taskbot shedule b-2\n@taskbot status")
    assert [r.error is None for r in results] == [True, False, True]
    assert isinstance(results[0].command, Schedule)
    error = results[1].error
    assert error is not None
    assert (error.line, error.column) == (2, 10)
    assert error.suggestion == "@taskbot schedule b-2"
