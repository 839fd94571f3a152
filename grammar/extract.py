"""Find the lines of a chat message that are commands for the bot, skipping quoted text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grammar.errors import nearest
from grammar.vocabulary import ALIASES


@dataclass(frozen=True, slots=True)
class Triggers:
    """How people address the bot in one place (a GitHub comment, an IRC channel).

    ``names`` are the bot's names; ``mention`` accepts ``@name``, ``address`` accepts
    ``name:`` and ``name,``, ``slash`` accepts ``/verb`` and ``bang`` ``!verb``.
    ``markdown`` skips code blocks, block quotes and HTML comments; ``direct`` means
    the whole message is for the bot (a private message), so every line is a command.
    """

    names: tuple[str, ...] = ("taskbot",)
    mention: bool = False
    address: bool = False
    slash: bool = False
    bang: bool = False
    markdown: bool = False
    direct: bool = False


GITHUB = Triggers(mention=True, slash=True, markdown=True)
IRC = Triggers(address=True, bang=True)


@dataclass(frozen=True, slots=True)
class CommandLine:
    """A command found in a message: its line (1-based), the whole line, and where it starts."""

    line: int
    source: str
    start: int

    @property
    def prefix(self) -> str:
        """What addressed the bot (``@taskbot ``), as typed."""
        return self.source[: self.start]

    @property
    def body(self) -> str:
        """The command itself."""
        return self.source[self.start :]


def lines_of(message: str) -> list[str]:
    """A message's lines, split at every line boundary Python knows (``\\n``, ``\\r``,
    ``\\x85``, ``\\u2028`` ...): the one split used to find, count and limit commands."""
    return message.splitlines()


_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED = re.compile(r"^(?: {4}| {0,3}\t)")
_COMMENT_OPEN = "<!--"
_COMMENT_CLOSE = "-->"
# A near-miss of a verb after ``/`` or ``!`` is answered (``/shedule``); other words are
# left alone, since other bots in the same place use those prefixes too.
_NEAR_VERB_CUTOFF = 0.8


def _prefix_patterns(triggers: Triggers) -> list[re.Pattern[str]]:
    names = "|".join(re.escape(n) for n in sorted(triggers.names, key=len, reverse=True))
    indent = r"[ \t]*"  # Markdown's indented code is skipped before prefixes are sought
    patterns = []
    if triggers.mention:
        # ``@taskbot``, ``@taskbot[bot]`` (a GitHub App's login), then ``:`` or ``,`` maybe.
        patterns.append(rf"^{indent}@(?:{names})(?:\[bot\])?(?![\w-])[:,]?[ \t]*")
    if triggers.address:
        patterns.append(rf"^{indent}(?:{names})[:,][ \t]*")
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def _verb_prefix(triggers: Triggers) -> re.Pattern[str] | None:
    marks = ("/" if triggers.slash else "") + ("!" if triggers.bang else "")
    if not marks:
        return None
    indent = r"[ \t]*"
    return re.compile(rf"^{indent}[{re.escape(marks)}](?=(?P<verb>[A-Za-z][\w-]*))")


def _strip_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """Blank out HTML comments (keeping columns); tell whether one is still open."""
    out = []
    i = 0
    while i < len(line):
        if in_comment:
            end = line.find(_COMMENT_CLOSE, i)
            if end < 0:
                out.append(" " * (len(line) - i))
                return "".join(out), True
            out.append(" " * (end + len(_COMMENT_CLOSE) - i))
            i = end + len(_COMMENT_CLOSE)
            in_comment = False
        else:
            start = line.find(_COMMENT_OPEN, i)
            if start < 0:
                out.append(line[i:])
                break
            out.append(line[i:start])
            i = start
            in_comment = True
    return "".join(out), in_comment


def _visible_lines(message: str) -> list[tuple[int, str]]:
    """The lines of Markdown a reader sees as plain text: no code, quotes or comments."""
    visible: list[tuple[int, str]] = []
    fence: str | None = None
    in_comment = False
    in_quote = False
    for number, line in enumerate(lines_of(message), start=1):
        if fence is not None:
            closing = _FENCE.match(line)
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not line[closing.end() :].strip()
            ):
                fence = None
            continue
        if not in_comment:
            opening = _FENCE.match(line)
            if opening and not (opening["fence"][0] == "`" and "`" in line[opening.end() :]):
                fence = opening["fence"]
                in_quote = False
                continue
        if not in_comment and _INDENTED.match(line):
            continue  # indented code, or a lazy line of a quote: never a command
        text, in_comment = _strip_comments(line, in_comment)
        if not text.strip():
            in_quote = False
            continue
        if _QUOTE.match(text):
            in_quote = True
            continue
        if in_quote:  # a lazy continuation line still belongs to the block quote
            continue
        visible.append((number, text))
    return visible


def extract_commands(message: str, triggers: Triggers = GITHUB) -> list[CommandLine]:
    """Every line of ``message`` that addresses the bot, one command per line."""
    lines = (
        _visible_lines(message)
        if triggers.markdown
        else list(enumerate(lines_of(message), start=1))
    )
    prefixes = _prefix_patterns(triggers)
    verb_prefix = _verb_prefix(triggers)
    found: list[CommandLine] = []
    for number, text in lines:
        source = text.rstrip()
        for pattern in prefixes:
            match = pattern.match(source)
            if match:
                found.append(CommandLine(number, source, match.end()))
                break
        else:
            match = verb_prefix.match(source) if verb_prefix else None
            if match and _is_ours(match["verb"]):
                found.append(CommandLine(number, source, match.end()))
            elif triggers.direct and source.strip():
                found.append(CommandLine(number, source, len(source) - len(source.lstrip())))
    return found


def _is_ours(word: str) -> bool:
    word = word.lower()
    return word in ALIASES or nearest(word, ALIASES, cutoff=_NEAR_VERB_CUTOFF) is not None
