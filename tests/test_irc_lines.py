"""IRC replies on the wire: every relayed line within 512 bytes, no character ever split."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.irc.lines import MAX_LINE, clean, relayed_budget, wrap

MASK = "taskbot!~taskbot@gateway/web/irccloud.com/x-abcdefghijklmnop"


def relayed(target: str, text: str) -> bytes:
    """What another client receives when the bot sends ``PRIVMSG target :text``."""
    return f":{MASK} PRIVMSG {target} :{text}\r\n".encode()


def test_the_budget_counts_the_prefix_others_see() -> None:
    budget = relayed_budget(MASK, "taskbot", "#sheriffs")
    assert len(relayed("#sheriffs", "x" * budget)) == MAX_LINE
    # before the bot has seen its own mask it assumes the longest user@host
    assert relayed_budget(None, "taskbot", "#sheriffs") < budget


def test_short_replies_are_one_addressed_line() -> None:
    assert wrap("r7f3a: 3 new tasks", 400, lead="sheriff: ") == ["sheriff: r7f3a: 3 new tasks"]
    assert wrap("one\ntwo\n\nthree", 400) == ["one", "two", "three"]


def test_exact_bytes_of_multibyte_text_split_at_character_boundaries() -> None:
    # 17 bytes of room after "a: ": é is 2 bytes, € 3, 🦊 4
    lines = wrap("ééééééééééééééé€€€€ 🦊🦊🦊🦊🦊", 20, lead="a: ")
    assert [line.encode() for line in lines] == [
        b"a: " + "é".encode() * 8,
        b"a: " + "é".encode() * 7 + "€".encode(),  # exactly 20 bytes
        b"a: " + "€".encode() * 3,
        b"a: " + "🦊".encode() * 4,
        b"a: " + "🦊".encode(),
    ]
    assert [len(line.encode()) for line in lines] == [19, 20, 12, 19, 7]


def test_long_links_are_cut_and_words_wrap_at_spaces() -> None:
    link = "https://firefox-ci-tc.services.mozilla.com/tasks/groups/" + "A" * 120
    lines = wrap(f"see {link} for the group", 60, lead="nick: ")
    assert all(len(line.encode()) <= 60 for line in lines)
    assert all(line.startswith("nick: ") for line in lines)
    bodies = [line.removeprefix("nick: ") for line in lines]
    assert bodies[0] == "see"  # the link does not fit after it: it starts a line
    assert "".join(bodies[1:-1]) + bodies[-1].removesuffix(" for the group") == link


def test_a_base_character_stays_with_its_combining_marks() -> None:
    text = "q\u0301" * 10  # q + COMBINING ACUTE ACCENT (no precomposed form): 3 bytes each
    lines = wrap(text, 10)
    assert lines == ["q\u0301" * 3] * 3 + ["q\u0301"]
    assert all(not unicodedata.combining(line[0]) for line in lines)


def test_control_bytes_never_reach_the_wire() -> None:
    assert clean("a\x00b\rc\x07d\te") == "abcd e"
    assert clean("\x02bold\x02 \x0304red\x03") == "\x02bold\x02 \x0304red\x03"  # formatting kept
    # a newline starts another PRIVMSG's text; it never ends the command early
    assert wrap("hi\r\nQUIT :bye", 100) == ["hi", "QUIT :bye"]


@given(st.text(min_size=0, max_size=3000), st.integers(min_value=30, max_value=450))
def test_any_text_fits_and_loses_no_characters(text: str, budget: int) -> None:
    lines = wrap(text, budget, lead="sheriff: ")
    for line in lines:
        encoded = line.encode()
        assert len(encoded) <= budget
        assert b"\r" not in encoded
        assert b"\n" not in encoded
        assert b"\0" not in encoded
        encoded.decode()  # whole characters only
    kept = "".join(c for c in clean(text.replace("\n", " ")) if not c.isspace())
    sent = "".join(c for line in lines for c in line.removeprefix("sheriff: ") if not c.isspace())
    assert sent == kept


def test_a_budget_with_no_room_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        wrap("text", 10, lead="a-very-long-nick: ")
