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
from grammar.lexicon import Argument, Lexicon, Rule
from grammar.tokens import Item, keyword, keyword_pattern, missing, tagged
from grammar.vocabulary import ALIASES, VERBS, WORD_END

# --- shared clauses ------------------------------------------------------------

# Words that open a clause, so never a job, a revision or a platform. Checked inside one
# regex (a lookahead) rather than by trying each keyword first: most words are jobs.
RESERVED_WORDS = r"(?:(?i:on|for|times|and|dry-?run|preview)|[x×][0-9]+)"


def plain_word_pattern(*reserved: str) -> str:
    """A word that is neither reserved (nor in ``reserved``), an option, nor quoted."""
    words = RESERVED_WORDS
    if reserved:
        words = rf"(?:{words}|(?i:{'|'.join(re.escape(w) for w in reserved)}))"
    return rf"(?!{words}{WORD_END})[^\s,\"'“‘\-—–][^\s,\"'“‘]*"


def plain_word(*reserved: str) -> pp.Regex:
    return pp.Regex(plain_word_pattern(*reserved))


TIMES_PATTERN = rf"[x×][0-9]+{WORD_END}"
DRY_RUN_PATTERN = rf"(?:(?:--|—|–)(?:dry-?run|preview)|-n|dry-?run|preview){WORD_END}"
OPTION_PATTERN = r"(?:-|—|–)[^\s,]*"
# ``notify me``: the requester hears when the request ends (as ``--notify``).
NOTIFY_PATTERN = rf"notify[ \t]+me{WORD_END}"
COUNT_PATTERN = rf"[0-9]+{WORD_END}"
# Straight quotes with backslash escapes, or the typographic pairs chat clients substitute.
QUERY_PATTERN = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|“[^”]*”|‘[^’]*’"""
UNTERMINATED_PATTERN = r"[\"'“‘].*"
UNEXPECTED_PATTERN = r"[^\s,]+|,"

COMMA = pp.Suppress(",").set_name("comma")
AND = pp.Suppress(keyword("and", name="`and`"))
SEPARATOR = (COMMA | AND).set_name("separator")
ON = tagged("on", keyword("on", name="`on`"))
DRY_RUN = tagged("dry_run", pp.Regex(DRY_RUN_PATTERN, flags=re.IGNORECASE).set_name("--dry-run"))
OPTION = tagged("option", pp.Regex(OPTION_PATTERN).set_name("option"))
NOTIFY_ME = tagged("notify", pp.Regex(NOTIFY_PATTERN, flags=re.IGNORECASE).set_name("`notify me`"))
REVISION = tagged("revision", plain_word().set_name("revision"))
ON_CLAUSE = (ON + (REVISION | missing("revision"))).set_name("on <revision>")
QUERY = tagged("query", pp.Regex(QUERY_PATTERN).set_name("quoted query"))
UNTERMINATED = tagged("unterminated", pp.Regex(UNTERMINATED_PATTERN).set_name("unterminated quote"))
WORD = tagged("word", plain_word().set_name("job"))
UNEXPECTED = tagged("unexpected", pp.Regex(UNEXPECTED_PATTERN).set_name("anything"))

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


# The same, for commands whose items are all plain patterns: read with one regex per item
# (``Lexicon``). The rules below spell the elements above, alternative for alternative.
def lexed(name: str, *rules: Rule) -> pp.ParserElement:
    """``name`` followed by items read by ``rules`` (in order of preference), a separator
    or, failing all, an ``unexpected`` item; then the end of the text."""
    body = Lexicon(*rules, *SEPARATOR_RULES, UNEXPECTED_RULE, name=f"{name} item")
    return (verb(name) + pp.ZeroOrMore(body) + pp.StringEnd()).set_name(f"{name} command")


def word_rule(kind: str, *reserved: str) -> Rule:
    return Rule(kind, plain_word_pattern(*reserved))


def keyword_rule(kind: str, *words: str, argument: Argument | None = None) -> Rule:
    return Rule(kind, keyword_pattern(*words), re.IGNORECASE, argument)


REVISION_ARGUMENT = Argument("revision", plain_word_pattern(), "revision")
COUNT_ARGUMENT = Argument("count", COUNT_PATTERN, "count")
NOTIFY_RULE = Rule("notify", NOTIFY_PATTERN, re.IGNORECASE)
QUERY_RULE = Rule("query", QUERY_PATTERN)
UNTERMINATED_RULE = Rule("unterminated", UNTERMINATED_PATTERN)
WORD_RULE = word_rule("word")
ON_RULE = keyword_rule("on", "on", argument=REVISION_ARGUMENT)
FOR_RULE = keyword_rule(
    "for", "for", argument=Argument("filter", plain_word_pattern(), "filter", many=True)
)
CLAUSE_RULES = (
    ON_RULE,
    FOR_RULE,
    Rule("times", TIMES_PATTERN),
    keyword_rule("times_word", "times", argument=COUNT_ARGUMENT),
    Rule("dry_run", DRY_RUN_PATTERN, re.IGNORECASE),
    Rule("option", OPTION_PATTERN),
)
SELECTOR_RULES = (WORD_RULE, QUERY_RULE, UNTERMINATED_RULE)
SEPARATOR_RULES = (Rule(None, ","), Rule(None, keyword_pattern("and"), re.IGNORECASE))
UNEXPECTED_RULE = Rule("unexpected", UNEXPECTED_PATTERN)
OPTION_RULE = CLAUSE_RULES[-1]

SCHEDULE = lexed("schedule", NOTIFY_RULE, *SELECTOR_RULES, *CLAUSE_RULES)
RETRIGGER = lexed(
    "retrigger",
    NOTIFY_RULE,
    word_rule("word", "failed", "exception", "exceptions"),
    keyword_rule("failed", "failed"),
    keyword_rule("exception", "exception", "exceptions"),
    QUERY_RULE,
    UNTERMINATED_RULE,
    *CLAUSE_RULES,
)
CANCEL = lexed("cancel", word_rule("word", "all"), keyword_rule("all", "all"), ON_RULE, OPTION_RULE)
RERUN = lexed("rerun", WORD_RULE, OPTION_RULE)
STATUS = lexed("status", WORD_RULE, ON_RULE, OPTION_RULE)
PUSHES = lexed("pushes", ON_RULE, WORD_RULE)
PUSH = lexed("push", ON_RULE, WORD_RULE, OPTION_RULE)
ACTIONS = lexed("actions", ON_RULE, WORD_RULE, OPTION_RULE)
BACKFILL = lexed(
    "backfill",
    NOTIFY_RULE,
    keyword_rule("depth", "depth", argument=COUNT_ARGUMENT),
    *SELECTOR_RULES,
    *CLAUSE_RULES,
)
BISECT = lexed(
    "bisect",
    NOTIFY_RULE,
    keyword_rule(
        "from", "from", argument=Argument("revision", plain_word_pattern(), "good revision")
    ),
    Rule(
        "max",
        keyword_pattern("max"),
        re.IGNORECASE,
        COUNT_ARGUMENT,
        trailer=Rule("pushes_word", keyword_pattern("pushes", "push"), re.IGNORECASE),
    ),
    *SELECTOR_RULES,
    *CLAUSE_RULES,
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
JOBS = lexed(
    "jobs",
    QUERY_RULE,
    Rule("term", rf"(?!(?i:on|for){WORD_END})\S+"),
    ON_RULE,
    FOR_RULE,
)
CONFIRM = lexed("confirm", WORD_RULE)
HELP = lexed("help", Rule("word", r"[^\s,]+"))
TRY = lexed(
    "try",
    *trysyntax.OPTION_RULES,
    ON_RULE,
    Rule("dry_run", DRY_RUN_PATTERN, re.IGNORECASE),
    trysyntax.UNKNOWN_OPTION,
)
APPROVE = lexed("approve", WORD_RULE, ON_RULE)
MORE = lexed("more")
UNKNOWN_VERB = (
    tagged("verb:?", pp.Regex(r"\S+").set_name("command")) + pp.Regex(".*") + pp.StringEnd()
)


class ByVerb(pp.Token):
    """The command whose verb (or alias) the text starts with, else an unknown verb: the
    first word picks the one rule to try, instead of trying every command's verb in turn."""

    def __init__(self, commands: dict[str, pp.ParserElement], unknown: pp.ParserElement) -> None:
        super().__init__()
        self.by_alias = {alias: commands[name] for alias, name in ALIASES.items()}
        self.unknown = unknown
        for element in (*commands.values(), unknown):
            element.streamline()
        self.set_name("command")

    def parseImpl(  # noqa: N802 - pyparsing's name
        self, instring: str, loc: int, do_actions: bool = True
    ) -> tuple[int, pp.ParseResults]:
        first = _FIRST_WORD.match(instring, loc).group().lower()  # type: ignore[union-attr]
        chosen = self.by_alias.get(first) or self.by_alias.get(first.partition(":")[0])
        for element in (chosen, self.unknown) if chosen is not None else (self.unknown,):
            try:
                return element._parse(instring, loc, do_actions)
            except pp.ParseException:
                continue  # e.g. ``schedule:`` is no verb
        raise pp.ParseException(instring, loc, self.errmsg, self)


_FIRST_WORD = re.compile(r"[^\s,]*")
COMMAND = ByVerb(
    {
        "schedule": SCHEDULE,
        "retrigger": RETRIGGER,
        "rerun": RERUN,
        "cancel": CANCEL,
        "status": STATUS,
        "pushes": PUSHES,
        "push": PUSH,
        "actions": ACTIONS,
        "action": ACTION,
        "backfill": BACKFILL,
        "bisect": BISECT,
        "jobs": JOBS,
        "confirm": CONFIRM,
        "help": HELP,
        "try": TRY,
        "approve": APPROVE,
        "more": MORE,
    },
    UNKNOWN_VERB,
)
COMMAND.parse_with_tabs()  # keep tabs, so offsets are columns of the text as typed


def tokenize(text: str) -> list[Item]:
    """Split one command into items; never fails on any input."""
    if not text.strip():
        return []
    return [t for t in COMMAND.parse_string(text) if isinstance(t, Item)]
