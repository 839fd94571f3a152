"""The Matrix adapter's pure parts: which lines of a message may hold commands, the contents
it sends (replies, threads, edits, reactions), settings and who may do what."""

from __future__ import annotations

import pytest

from bot.adapters.matrix.messages import (
    HTML_FORMAT,
    addressed,
    command_text,
    edit,
    mentions,
    message,
    reaction,
    relation_of,
    to_html,
)
from bot.adapters.matrix.people import READ, WRITE, MatrixOrigin, level_of, refusal
from bot.adapters.matrix.settings import MatrixSettings, MatrixSettingsError
from bot.config import ConfigError
from bot.core.access import Level
from bot.core.backoff import Backoff
from bot.projects import load_projects

ME = "@taskbot:taskbot.test"


def text(body: str, formatted: str | None = None, msgtype: str = "m.text") -> dict[str, object]:
    content: dict[str, object] = {"msgtype": msgtype, "body": body}
    if formatted is not None:
        content.update(format=HTML_FORMAT, formatted_body=formatted)
    return content


def test_a_plain_command_is_kept() -> None:
    assert command_text(text("taskbot: retrigger failed")) == "taskbot: retrigger failed"


def test_a_fenced_code_block_never_holds_a_command() -> None:
    body = "look:\n```\ntaskbot: retrigger failed x3\n```\ntaskbot: status"
    formatted = (
        "<p>look:</p><pre><code>taskbot: retrigger failed x3\n</code></pre><p>taskbot: status</p>"
    )
    kept = command_text(text(body, formatted))
    assert "retrigger" not in kept
    assert "taskbot: status" in kept


def test_an_indented_code_block_is_known_by_its_html() -> None:
    # Markdown's four-space code block: the body alone does not say it is code, the HTML does.
    body = "as I said:\n\n    taskbot: retrigger failed\n"
    formatted = "<p>as I said:</p>\n<pre><code>taskbot: retrigger failed\n</code></pre>\n"
    assert "retrigger" not in command_text(text(body, formatted))


def test_a_quoted_reply_fallback_never_runs() -> None:
    body = "> <@alice:taskbot.test> taskbot: retrigger failed\n\nwhy did you do that?"
    formatted = (
        "<mx-reply><blockquote>taskbot: retrigger failed</blockquote></mx-reply>why did you?"
    )
    assert "retrigger" not in command_text(text(body, formatted))


def test_a_quotation_never_runs_but_the_line_after_it_does() -> None:
    body = "> taskbot: cancel all\ntaskbot: status"
    formatted = "<blockquote><p>taskbot: cancel all</p></blockquote><p>taskbot: status</p>"
    kept = command_text(text(body, formatted))
    assert "cancel" not in kept
    assert kept.strip() == "taskbot: status"


def test_inline_code_inside_a_command_keeps_the_command() -> None:
    body = "taskbot: schedule `mochitest-1`"
    formatted = "taskbot: schedule <code>mochitest-1</code>"
    assert command_text(text(body, formatted)) == body


def test_notices_and_other_types_hold_no_commands() -> None:
    # Bots answer with notices; answering notices is how two bots talk forever.
    assert command_text(text("taskbot: status", msgtype="m.notice")) == ""
    assert command_text(text("taskbot: status", msgtype="m.emote")) == ""
    assert command_text({"msgtype": "m.text", "body": ["not", "text"]}) == ""
    # A notice edited into text is a notice all the same.
    edited_notice = {
        "msgtype": "m.notice",
        "body": "* taskbot: status",
        "m.new_content": {"msgtype": "m.text", "body": "taskbot: status"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$n"},
    }
    assert command_text(edited_notice) == ""


def test_an_edit_is_read_from_its_new_content() -> None:
    content = {
        "msgtype": "m.text",
        "body": "* taskbot: retrigger failed x2",
        "m.new_content": {"msgtype": "m.text", "body": "taskbot: retrigger failed x2"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$original"},
    }
    assert command_text(content) == "taskbot: retrigger failed x2"
    assert relation_of(content) == ("$original", None)


def test_broken_html_hides_nothing_and_runs_nothing_it_hides() -> None:
    body = "taskbot: status"
    assert command_text(text(body, "<pre><code>taskbot: status")) == ""
    assert command_text(text(body, "<b>taskbot: status</b")) == body


def test_a_reply_in_a_thread_stays_in_the_thread() -> None:
    content = message("ok", reply_to="$cmd", thread_root="$root", mention="@alice:t.test")
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$cmd"},
    }
    assert content["m.mentions"] == {"user_ids": ["@alice:t.test"]}
    assert content["body"] == "ok"


def test_a_reply_outside_a_thread_is_a_plain_reply() -> None:
    content = message("ok", reply_to="$cmd")
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    assert relation_of({"m.relates_to": {"rel_type": "m.thread", "event_id": "$r"}}) == (
        None,
        "$r",
    )


def test_a_message_with_nothing_to_reply_to_names_the_person() -> None:
    content = message("[r1] finished: 3 ok", mention="@alice:t.test")
    assert content["body"] == "@alice:t.test: [r1] finished: 3 ok"
    assert 'href="https://matrix.to/#/@alice:t.test"' in content["formatted_body"]
    assert "m.relates_to" not in content


def test_an_edit_replaces_in_place_with_a_fallback() -> None:
    content = edit("$card", "[r1] 1/2 done\n  a: https://tc.test/tasks/A", ("https://tc.test/",))
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$card"}
    assert content["body"].startswith("* [r1] 1/2 done")
    new = content["m.new_content"]
    assert new["body"] == "[r1] 1/2 done\n  a: https://tc.test/tasks/A"
    assert '<a href="https://tc.test/tasks/A">' in new["formatted_body"]
    assert "m.relates_to" not in new


def test_reactions_are_emoji_annotations() -> None:
    assert reaction("$cmd", "rocket") == {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$cmd", "key": "🚀"}
    }


def test_html_escapes_what_people_typed() -> None:
    text = "unknown job `<script>alert(1)</script>` & more\n  x: https://a.test/?q=<b>"
    rendered = to_html(text, ("https://a.test/",))
    assert "<script>" not in rendered
    assert "&lt;script&gt;" in rendered
    assert "<ul><li>" in rendered
    assert '<a href="https://a.test/?q=">' in rendered  # the URL stops at the <


def test_only_links_to_known_places_are_links() -> None:
    text = "`x` is not a job: see https://evil.example/login or https://tc.test/tasks/A."
    rendered = to_html(text, ("https://tc.test/",))
    assert '<a href="https://tc.test/tasks/A">' in rendered
    assert "evil.example" in rendered
    assert 'href="https://evil.example' not in rendered
    assert "<a " not in to_html("https://tc.test/tasks/A")  # no known places: no links


def settings(**env: str) -> MatrixSettings:
    base = {
        "MATRIX_HOMESERVER": "https://matrix.example.org/",
        "MATRIX_USER_ID": ME,
        "MATRIX_ACCESS_TOKEN": "syt_secret",
    }
    found = MatrixSettings.from_env({**base, **env})
    assert found is not None
    return found


def test_settings_read_from_the_environment_hide_the_token() -> None:
    found = settings(
        MATRIX_ROOMS="#sheriffs:taskbot.test, !abc:taskbot.test, !R_2_QsX2TLxME53qmHukhM3",
        MATRIX_WRITE_USERS="@alice:taskbot.test",
        MATRIX_WRITE_POWER="none",
    )
    assert found.homeserver == "https://matrix.example.org"
    # Room ids of version 12 rooms have no server part.
    assert found.rooms == (
        "#sheriffs:taskbot.test",
        "!abc:taskbot.test",
        "!R_2_QsX2TLxME53qmHukhM3",
    )
    assert found.write_power is None
    assert "syt_secret" not in repr(found)
    assert MatrixSettings.from_env({}) is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MATRIX_USER_ID": "taskbot"}, "MATRIX_USER_ID"),
        ({"MATRIX_ACCESS_TOKEN": ""}, "MATRIX_ACCESS_TOKEN"),
        ({"MATRIX_PASSWORD": "pw"}, "not both"),
        ({"MATRIX_ROOMS": "sheriffs"}, "MATRIX_ROOMS"),
        ({"MATRIX_ROOMS": "#sheriffs"}, "MATRIX_ROOMS"),
        ({"MATRIX_ROOMS": "!"}, "MATRIX_ROOMS"),
        ({"MATRIX_WRITE_USERS": "*"}, "MATRIX_WRITE_USERS"),
        ({"MATRIX_WRITE_USERS": "alice"}, "MATRIX_WRITE_USERS"),
        ({"MATRIX_WRITE_POWER": "lots"}, "MATRIX_WRITE_POWER"),
        ({"MATRIX_HOMESERVER": "matrix.org"}, "MATRIX_HOMESERVER"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(MatrixSettingsError, match=named):
        settings(**env)


def test_levels_by_list_and_by_power() -> None:
    found = settings(MATRIX_WRITE_USERS="@alice:taskbot.test")
    assert level_of(found, "@alice:taskbot.test", 0) == WRITE
    assert level_of(found, "@mod:taskbot.test", 50) == WRITE
    assert level_of(found, "@bob:taskbot.test", 0) == READ
    closed = settings(MATRIX_READ_USERS="@carol:taskbot.test", MATRIX_WRITE_POWER="none")
    assert level_of(closed, "@mod:taskbot.test", 100) == Level.NONE
    assert level_of(closed, "@carol:taskbot.test", 0) == READ


def test_a_refusal_says_what_would_allow_it() -> None:
    found = settings()
    origin = MatrixOrigin(user_id="@bob:taskbot.test", room_id="!r:t", power=10)
    said = refusal(found, origin, "retrigger", Level.WRITE)
    assert "@bob:taskbot.test may read here" in said
    assert "MATRIX_WRITE_USERS" in said
    assert "power level of at least 50" in said
    assert "(yours is 10)" in said


def test_projects_name_their_matrix_rooms() -> None:
    _, projects = load_projects(
        'projects:\n  gecko:\n    matrix_rooms: ["#sheriffs:mozilla.org", "!x:mozilla.org", "!y"]\n'
    )
    assert projects["gecko"].matrix_rooms == ("#sheriffs:mozilla.org", "!x:mozilla.org", "!y")
    with pytest.raises(ConfigError, match="matrix_rooms"):
        load_projects('projects:\n  gecko:\n    matrix_rooms: ["#sheriffs"]\n')


def test_a_mention_may_name_the_bot_without_a_colon() -> None:
    content = {
        "msgtype": "m.text",
        "body": "Taskbot retrigger failed\nthanks Taskbot",
        "m.mentions": {"user_ids": [ME]},
    }
    assert mentions(content, ME)
    assert not mentions({"body": "x"}, ME)
    text = addressed(command_text(content), ("taskbot", "Taskbot (CI)"))
    assert text == "Taskbot: retrigger failed\nthanks Taskbot"
    assert addressed("@taskbot  status", ("taskbot",)) == "@taskbot: status"
    assert addressed("taskbot try: -b do", ("taskbot",)) == "taskbot: try: -b do"
    # Talking about the bot, or at it, is not a command.
    assert addressed("taskbot thanks, that worked", ("taskbot",)) == "taskbot thanks, that worked"


def test_backoff_doubles_to_its_cap_and_starts_again_after_a_lasting_connection() -> None:
    backoff = Backoff(base=2.0, cap=10.0, stable_after=60.0)
    ceilings = []
    for _ in range(5):
        delay = backoff.delay(lasted=1.0)
        ceilings.append(min(10.0, 2.0 * 2 ** (backoff.failures - 1)))
        assert ceilings[-1] / 2 <= delay <= ceilings[-1]
    assert ceilings == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(lasted=120.0) <= 2.0  # a connection that lasted: from the start
    assert backoff.failures == 0


def test_the_card_table_and_its_links_become_html() -> None:
    card = (
        "[r1] schedule x\n\n| job | state |\n| --- | --- |\n"
        "| [test-a/opt-<b>x</b>](https://tc.test/tasks/A) | completed |\n"
        "| [elsewhere](https://evil.example/) | failed |\n\n**finished: 1 ok, 1 failed**"
    )
    rendered = to_html(card, ("https://tc.test/",))
    assert "<table><thead><tr><th>job</th><th>state</th></tr></thead>" in rendered
    assert '<td><a href="https://tc.test/tasks/A">test-a/opt-&lt;b&gt;x&lt;/b&gt;</a></td>' in (
        rendered
    )
    assert "[elsewhere](https://evil.example/)" in rendered  # not a link: not a known place
    assert "<b>finished: 1 ok, 1 failed</b>" in rendered
    assert "---" not in rendered  # the rule under the head is no row
