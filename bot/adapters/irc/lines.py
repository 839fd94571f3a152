"""Reply text as IRC wire lines: under 512 bytes as relayed, never split inside a character."""

from __future__ import annotations

import re
import unicodedata

MAX_LINE = 512  # bytes, with the relaying prefix and CR LF (RFC 1459 / Modern IRC)
# Before the bot knows its own nick!user@host, assume the longest a server gives:
# USERLEN 10 (with a ~), a 63-byte host.
USER_AND_HOST_ALLOWANCE = 1 + 10 + 1 + 63
# C0 controls other than IRC formatting codes (bold, colour, italics, reset...) and DEL.
_CONTROL = re.compile(r"[\x00-\x01\x04-\x0e\x10-\x1c\x7f]")


# IRC's formatting codes: colours (with their numbers), hex colours, bold, italics,
# monospace, reverse, strikethrough, underline, reset.
FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


def plain(text: str) -> str:
    """A message as its words, without IRC's formatting codes (a line in a colour is a
    command all the same, and codes are never echoed back)."""
    return FORMATTING.sub("", text)


def relayed_budget(mask: str | None, nick: str, target: str, *, command: str = "PRIVMSG") -> int:
    """Bytes left for text in ``:mask COMMAND target :text\\r\\n`` as other clients get it."""
    prefix = mask or nick + "!" + "u" * (USER_AND_HOST_ALLOWANCE - 1)
    overhead = len(f":{prefix} {command} {target} :".encode()) + 2
    return MAX_LINE - overhead


def clean(text: str) -> str:
    """One line of text: tabs as spaces; no CR, LF, NUL or other control bytes."""
    text = text.replace("\t", " ")
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def _cut(word: str, room: int) -> tuple[str, str]:
    """The longest head of ``word`` that fits ``room`` bytes, cut between characters, and
    not between a character and its combining marks unless one cluster exceeds ``room``."""
    used = cut = cluster = 0
    for index, char in enumerate(word):
        if not unicodedata.combining(char):
            cluster = index
        used += len(char.encode())
        if used > room:
            break
        cut = index + 1
    else:
        return word, ""
    if unicodedata.combining(word[cut]) and cluster > 0:
        cut = cluster
    return word[:cut], word[cut:]


def wrap(text: str, budget: int, *, lead: str = "") -> list[str]:
    """``text`` as lines of at most ``budget`` UTF-8 bytes, each starting with ``lead``
    (``"nick: "``). Lines break at spaces; a word longer than a line (a long link) is cut
    between characters. Newlines in ``text`` start new lines; empty lines are dropped. A
    line's leading spaces are kept (a caret under a parse error stays under the typo)."""
    room = budget - len(lead.encode())
    if room < 8:
        raise ValueError(f"{budget} bytes leave no room for text after {lead!r}")
    out: list[str] = []
    for raw in text.split("\n"):
        cleaned = clean(raw)
        body = cleaned.lstrip(" ")
        indent = cleaned[: len(cleaned) - len(body)]
        words = body.split(" ")
        line = ""
        for word in words:
            if not word:
                continue
            candidate = f"{line} {word}" if line else indent + word
            if len(candidate.encode()) <= room:
                line = candidate
                continue
            if line:
                out.append(line)
                line = ""
            while len(word.encode()) > room:
                head, word = _cut(word, room)
                out.append(head)
            line = word
        if line:
            out.append(line)
    return [lead + line for line in out]
