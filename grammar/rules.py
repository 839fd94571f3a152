"""The pyparsing grammar of taskbot's command language: it recognises, ``build`` validates.

Every element is named (``set_name``) and every token it keeps becomes an ``Item``
that remembers where it stood, so the builder can point at the exact column when a
command is well-formed but wrong (``x0``, an unknown option, a short revision).
Nothing in the grammar itself raises on user input: clauses that miss their argument
yield a ``missing`` item, words that fit nowhere an ``unexpected`` item.
"""

from __future__ import annotations

import re

import pyparsing as pp

from grammar import trysyntax
from grammar.tokens import Item, keyword, missing, tagged
from grammar.vocabulary import VERBS, WORD_END

# --- shared clauses ------------------------------------------------------------

COMMA = pp.Suppress(",").set_name("comma")
AND = pp.Suppress(keyword("and", name="`and`"))
SEPARATOR = (COMMA | AND).set_name("separator")

ON = tagged("on", keyword("on", name="`on`"))
FOR = tagged("for", keyword("for", name="`for`"))
TIMES_WORD = tagged("times_word", keyword("times", name="`times`"))
TIMES_SHORT = tagged("times", pp.Regex(rf"[x×][0-9]+{WORD_END}").set_name("x<N>"))
DRY_RUN = tagged(
    "dry_run",
    pp.Regex(
        rf"(?:(?:--|—|–)(?:dry-?run|preview)|-n|dry-?run|preview){WORD_END}",
        flags=re.IGNORECASE,
    ).set_name("--dry-run"),
)
OPTION = tagged("option", pp.Regex(r"(?:-|—|–)[^\s,]*").set_name("option"))
# ``notify me``: the requester hears when the request ends (as ``--notify``).
NOTIFY_ME = tagged(
    "notify", pp.Regex(rf"notify[ \t]+me{WORD_END}", flags=re.IGNORECASE).set_name("`notify me`")
)

# Words that open a clause, so never a job, a revision or a platform. Checked inside one
# regex (a lookahead) rather than by trying each keyword element first: most words are
# jobs, and a failed pyparsing match costs an exception.
RESERVED_WORDS = r"(?:(?i:on|for|times|and|dry-?run|preview)|[x×][0-9]+)"


def plain_word(*reserved: str) -> pp.Regex:
    """A word that is neither reserved (nor in ``reserved``), an option, nor quoted."""
    words = RESERVED_WORDS
    if reserved:
        words = rf"(?:{words}|(?i:{'|'.join(re.escape(w) for w in reserved)}))"
    return pp.Regex(rf"(?!{words}{WORD_END})[^\s,\"'“‘\-—–][^\s,\"'“‘]*")


REVISION = tagged("revision", plain_word().set_name("revision"))
FILTER = tagged("filter", plain_word().set_name("platform or build type"))
COUNT = tagged("count", pp.Regex(rf"[0-9]+{WORD_END}").set_name("count"))

ON_CLAUSE = (ON + (REVISION | missing("revision"))).set_name("on <revision>")
FOR_CLAUSE = (
    FOR + ((FILTER + pp.ZeroOrMore(pp.Opt(COMMA) + FILTER)) | missing("filter"))
).set_name("for <filters>")
TIMES_CLAUSE = (TIMES_SHORT | TIMES_WORD + (COUNT | missing("count"))).set_name("x<N>")

# Straight quotes with backslash escapes, or the typographic pairs chat clients substitute.
QUERY = tagged(
    "query",
    pp.Regex(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|“[^”]*”|‘[^’]*’""").set_name("quoted query"),
)
UNTERMINATED = tagged("unterminated", pp.Regex(r"[\"'“‘].*").set_name("unterminated quote"))
WORD = tagged("word", plain_word().set_name("job"))
UNEXPECTED = tagged("unexpected", pp.Regex(r"[^\s,]+|,").set_name("anything"))

SELECTOR = (WORD | QUERY | UNTERMINATED).set_name("job selector")
CLAUSE = (ON_CLAUSE | FOR_CLAUSE | TIMES_CLAUSE | DRY_RUN | OPTION).set_name("clause")

# --- commands ------------------------------------------------------------------


def verb(name: str) -> pp.ParserElement:
    """The verb ``name`` or one of its aliases, tagged with the verb's own name."""
    element: pp.ParserElement = keyword(*VERBS[name], name=f"`{name}`")
    if name == "try":
        # Gecko writes ``try:`` with the colon attached.
        element = pp.Regex(rf"try(?::|{WORD_END})", flags=re.IGNORECASE).set_name("`try:`")
    return tagged(f"verb:{name}", element)


def command(name: str, *items: pp.ParserElement) -> pp.ParserElement:
    """``name`` followed by any of ``items`` in any order, then the end of the text.

    ``items`` are tried in order, the most frequent first; a separator or, failing all,
    an ``unexpected`` item comes after them.
    """
    body = pp.ZeroOrMore(pp.MatchFirst([*items, SEPARATOR, UNEXPECTED]))
    return (verb(name) + body + pp.StringEnd()).set_name(f"{name} command")


SCHEDULE = command("schedule", NOTIFY_ME, SELECTOR, CLAUSE)
RETRIGGER = command(
    "retrigger",
    NOTIFY_ME,
    tagged("word", plain_word("failed", "exception", "exceptions").set_name("job or taskId")),
    tagged("failed", keyword("failed", name="`failed`")),
    tagged("exception", keyword("exception", "exceptions", name="`exception`")),
    QUERY,
    UNTERMINATED,
    CLAUSE,
)
CANCEL = command(
    "cancel",
    tagged("word", plain_word("all").set_name("request id or taskId")),
    tagged("all", keyword("all", name="`all`")),
    ON_CLAUSE,
    OPTION,
)
RERUN = command("rerun", tagged("word", plain_word().set_name("taskId")), OPTION)
STATUS = command("status", WORD, ON_CLAUSE, OPTION)
PUSHES = command("pushes", ON_CLAUSE, WORD)
PUSH = command("push", ON_CLAUSE, WORD, OPTION)
ACTIONS = command("actions", ON_CLAUSE, WORD, OPTION)
BACKFILL = command(
    "backfill",
    NOTIFY_ME,
    tagged("depth", keyword("depth", name="`depth`")) + (COUNT | missing("count")),
    SELECTOR,
    CLAUSE,
)
BISECT = command(
    "bisect",
    NOTIFY_ME,
    tagged("from", keyword("from", name="`from`")) + (REVISION | missing("good revision")),
    tagged("max", keyword("max", name="`max`"))
    + (COUNT | missing("count"))
    + pp.Opt(tagged("pushes_word", keyword("pushes", "push", name="`pushes`"))),
    SELECTOR,
    CLAUSE,
)
# An action's input: ``key=value`` fields (a value quoted when it holds spaces), or one JSON
# object, which runs to the last ``}`` of the command.
FIELD = tagged(
    "field",
    pp.Regex(
        r"""[A-Za-z_][A-Za-z0-9_.-]*=(?:"(?:[^"\\]|\\.)*"|'[^']*'|(?!["'])[^\s]*)"""
        + WORD_END.replace(",", "")  # a value may hold commas: `tasks=a,b`
    ).set_name("key=value"),
)
OPEN_FIELD = tagged(
    "open_field", pp.Regex(r"""[A-Za-z_][A-Za-z0-9_.-]*=["'].*""").set_name("key=value")
)
DOCUMENT = tagged("document", pp.Regex(r"\{.*\}", flags=re.DOTALL).set_name("{json}"))
OPEN_DOCUMENT = tagged("open_document", pp.Regex(r"[{\[].*", flags=re.DOTALL).set_name("{json}"))
# `on TASKID` for an action, where the taskId may begin with a dash
ACTION_ON = (
    ON
    + (
        REVISION
        | tagged("revision", pp.Regex(rf"-[A-Za-z0-9_-]{{21}}{WORD_END}").set_name("taskId"))
        | QUERY
        | tagged("revision", pp.Regex(r"[^\s]+").set_name("task, job or revision"))
        | missing("revision")
    )
).set_name("on <taskId|job|revision>")
ACTION = command(
    "action",
    NOTIFY_ME,
    FIELD,
    OPEN_FIELD,
    DOCUMENT,
    OPEN_DOCUMENT,
    ACTION_ON,
    DRY_RUN,
    OPTION,
    QUERY,
    UNTERMINATED,
    WORD,
)
JOBS = command(
    "jobs",
    QUERY,
    tagged("term", pp.Regex(rf"(?!(?i:on|for){WORD_END})\S+").set_name("search term")),
    ON_CLAUSE,
    FOR_CLAUSE,
)
CONFIRM = command("confirm", WORD)
HELP = command("help", tagged("word", pp.Regex(r"[^\s,]+").set_name("topic")))
TRY = command(
    "try",
    *trysyntax.OPTIONS,
    ON_CLAUSE,
    DRY_RUN,
    tagged("try_unknown_option", trysyntax.UNKNOWN_OPTION),
)
APPROVE = command("approve", WORD, ON_CLAUSE)
MORE = command("more")
UNKNOWN_VERB = tagged("verb:?", pp.Regex(r"\S+").set_name("command")) + pp.Regex(".*")

COMMAND = pp.MatchFirst(
    [
        SCHEDULE,
        RETRIGGER,
        RERUN,
        CANCEL,
        STATUS,
        PUSHES,
        PUSH,
        ACTIONS,
        ACTION,
        BACKFILL,
        BISECT,
        JOBS,
        CONFIRM,
        HELP,
        TRY,
        APPROVE,
        MORE,
        UNKNOWN_VERB,
    ]
).set_name("command")
COMMAND.parse_with_tabs()  # keep tabs, so offsets are columns of the text as typed


def tokenize(text: str) -> list[Item]:
    """Split one command into items; never fails on any input."""
    if not text.strip():
        return []
    return [t for t in COMMAND.parse_string(text, parse_all=True) if isinstance(t, Item)]
