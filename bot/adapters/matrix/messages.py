"""Matrix event contents, both ways: the command text of a message (never its quotes or code)
and the replies, edits and reactions the bot sends, HTML with a plain fallback."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from grammar.vocabulary import ALIASES

HTML_FORMAT = "org.matrix.custom.html"
REACTIONS = {"eyes": "👀", "rocket": "🚀", "confused": "😕"}
# Elements whose text is shown as code or as someone else's words: never commands.
HIDDEN_TAGS = frozenset({"pre", "code", "blockquote", "mx-reply"})
_FENCE = re.compile(r"^\s*(```|~~~)")
_URL = re.compile(r"https?://[^\s<>\"']+")
_LINK_OR_URL = re.compile(
    r"\[(?P<label>[^\]\n]+)\]\((?P<target>https?://[^\s)]+)\)|(?P<url>https?://[^\s<>\"']+)"
)
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ROW = re.compile(r"\|.*\|")
_RULE = re.compile(r"\|(\s*:?-{3,}:?\s*\|)+")
_PILL = "https://matrix.to/#/{user}"


class _Splitter(HTMLParser):
    """The text of an HTML body in two parts: what is shown as prose, and what is shown as
    code or quotation (``HIDDEN_TAGS``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._depth += 1
        elif tag in ("br", "p", "div", "li", "tr") and not self._depth:
            self.visible.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS and self._depth:
            self._depth -= 1
            self.hidden.append("\n")

    def handle_data(self, data: str) -> None:
        (self.hidden if self._depth else self.visible).append(data)


def _shown_apart(formatted: str) -> tuple[str, str]:
    splitter = _Splitter()
    try:
        splitter.feed(formatted)
        splitter.close()
    except Exception:  # a body too broken to read: nothing in it is prose
        return "", formatted
    return "".join(splitter.visible), "".join(splitter.hidden)


def new_content(content: dict[str, Any]) -> dict[str, Any]:
    """What a message says now: an edit's ``m.new_content``, else the content itself."""
    relates = content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
        replacement = content.get("m.new_content")
        if isinstance(replacement, dict):
            return replacement
    return content


def command_text(content: dict[str, Any]) -> str:
    """The lines of a text message that may hold commands: its plain ``body`` without quoted
    lines (``> ``, as reply fallbacks are), fenced code blocks, and lines its HTML shows as
    code or quotation. Notices (what bots send) and other message types hold none, nor
    does an edit that turns one into text."""
    if content.get("msgtype") != "m.text":
        return ""
    content = new_content(content)
    if content.get("msgtype") != "m.text":
        return ""
    body = content.get("body")
    if not isinstance(body, str):
        return ""
    hidden = visible = ""
    formatted = content.get("formatted_body")
    if content.get("format") == HTML_FORMAT and isinstance(formatted, str):
        visible, hidden = _shown_apart(formatted)
    kept: list[str] = []
    fenced = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        stripped = line.strip()
        if fenced or stripped.startswith(">"):
            continue
        if stripped and hidden:
            bare = stripped.strip("`").strip()
            if bare and bare in hidden and bare not in visible:
                continue
        kept.append(line)
    return "\n".join(kept)


def mentions(content: dict[str, Any], user_id: str) -> bool:
    """Whether a message mentions ``user_id`` (``m.mentions``, as clients set it for a pill)."""
    said = new_content(content).get("m.mentions")
    users = said.get("user_ids") if isinstance(said, dict) else None
    return isinstance(users, list) and user_id in users


def addressed(text: str, names: tuple[str, ...]) -> str:
    """The lines of a message that mentions the bot, with a line that starts with its name
    and then a command's verb (a pill shows as the display name, often with no colon after
    it) read as ``name: …``; talk about the bot (``taskbot thanks!``) stays talk."""
    if not names:
        return text
    pattern = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    lead = re.compile(rf"^(\s*@?(?:{pattern}))\s+(\S+)", re.IGNORECASE)

    def read(line: str) -> str:
        found = lead.match(line)
        if found is None or found[2].rstrip(":").lower() not in ALIASES:
            return line
        return f"{found[1]}: {line[found.start(2) :]}"

    return "\n".join(read(line) for line in text.split("\n"))


def relation_of(content: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the event an edit replaces, the thread the message is in): either may be None."""
    relates = content.get("m.relates_to")
    if not isinstance(relates, dict):
        return None, None
    target = relates.get("event_id")
    target = target if isinstance(target, str) else None
    kind = relates.get("rel_type")
    if kind == "m.replace":
        return target, None
    if kind == "m.thread":
        return None, target
    return None, None


def to_html(text: str, links: tuple[str, ...] = ()) -> str:
    """A reply as HTML: escaped, `code` as code, **bold** as bold, the indented lines of a
    status card as a list, a table (``| a | b |`` rows, as GitHub's card has) as a table,
    and links made links where they lead to ``links`` (the Taskcluster deployment,
    Treeherder): an address someone typed, echoed back, stays text."""
    out: list[str] = []
    items: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
            items.clear()
        if rows:
            head, *body = rows
            cells = "".join(f"<th>{cell}</th>" for cell in head)
            table = f"<table><thead><tr>{cells}</tr></thead><tbody>"
            for row in body:
                table += "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
            out.append(table + "</tbody></table>")
            rows.clear()

    for line in text.split("\n"):
        stripped = line.strip()
        if _ROW.fullmatch(stripped):
            if items:
                flush()
            if not _RULE.fullmatch(stripped):
                rows.append([_inline(c.strip(), links) for c in stripped[1:-1].split("|")])
            continue
        if line.startswith("  ") and stripped:
            if rows:
                flush()
            items.append(_inline(stripped, links))
            continue
        flush()
        out.append(_inline(stripped, links) + "<br>")
    flush()
    joined = "".join(out)
    return joined[: -len("<br>")] if joined.endswith("<br>") else joined


def _inline(line: str, links: tuple[str, ...]) -> str:
    if line.count("`") % 2:  # an unmatched backtick stays one
        return _linked(line, links)
    parts: list[str] = []
    for index, piece in enumerate(line.split("`")):
        if index % 2:  # between backticks
            parts.append(f"<code>{html.escape(piece)}</code>")
        else:
            parts.append(_linked(piece, links))
    return "".join(parts)


def _linked(text: str, links: tuple[str, ...]) -> str:
    """Escaped text with ``[label](url)`` and bare URLs to ``links`` as links, ``**x**``
    as bold."""
    parts: list[str] = []
    last = 0
    for found in _LINK_OR_URL.finditer(text):
        parts.append(_bold(html.escape(text[last : found.start()])))
        label, url = found["label"], found["target"] or found["url"]
        if found["url"]:
            url = url.rstrip(".,;)")
        end = found.end() if found["target"] else found.start() + len(url)
        shown = label if label is not None else url
        if links and url.startswith(links):
            parts.append(f'<a href="{html.escape(url)}">{_bold(html.escape(shown))}</a>')
        else:
            parts.append(_bold(html.escape(text[found.start() : end])))
        last = end
    parts.append(_bold(html.escape(text[last:])))
    return "".join(parts)


def _bold(escaped: str) -> str:
    return _BOLD.sub(r"<b>\1</b>", escaped)


def message(
    text: str,
    *,
    reply_to: str | None = None,
    thread_root: str | None = None,
    mention: str | None = None,
    links: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A notice (bots send notices, which bots do not answer) in reply to ``reply_to`` (in
    its thread when it was in one), mentioning ``mention`` so they are told of it."""
    body, formatted = text, to_html(text, links)
    if mention and not reply_to:
        link = _PILL.format(user=html.escape(mention))
        body = f"{mention}: {text}"
        formatted = f'<a href="{link}">{html.escape(mention)}</a>: {formatted}'
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
        "m.mentions": {"user_ids": [mention]} if mention else {},
    }
    if thread_root:
        relates: dict[str, Any] = {
            "rel_type": "m.thread",
            "event_id": thread_root,
            "is_falling_back": reply_to is None,
        }
        if reply_to:
            relates["is_falling_back"] = False
            relates["m.in_reply_to"] = {"event_id": reply_to}
        content["m.relates_to"] = relates
    elif reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


def edit(original: str, text: str, links: tuple[str, ...] = ()) -> dict[str, Any]:
    """An edit (``m.replace``) of the bot's message ``original`` to say ``text``: clients
    show the new content in place; older ones show the ``* `` fallback."""
    formatted = to_html(text, links)
    replacement = {
        "msgtype": "m.notice",
        "body": text,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
        "m.mentions": {},
    }
    return {
        "msgtype": "m.notice",
        "body": "* " + text,
        "format": HTML_FORMAT,
        "formatted_body": "* " + formatted,
        "m.new_content": replacement,
        "m.mentions": {},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    }


def reaction(event_id: str, name: str) -> dict[str, Any]:
    """A reaction (``m.annotation``) to ``event_id``: eyes, rocket or confused as emoji."""
    return {
        "m.relates_to": {
            "rel_type": "m.annotation",
            "event_id": event_id,
            "key": REACTIONS.get(name, name),
        }
    }
