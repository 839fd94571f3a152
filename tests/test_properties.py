"""Properties on generated input: any text gives commands or ParseError; text round-trips."""

from __future__ import annotations

import re
import string

from hypothesis import example, given
from hypothesis import strategies as st

from grammar import (
    GITHUB,
    IRC,
    AnyCommand,
    Cancel,
    Command,
    Confirm,
    Glob,
    Help,
    Jobs,
    Label,
    Name,
    ParseError,
    PlatformFilter,
    PlatformRestriction,
    Query,
    RequestId,
    Retrigger,
    Revision,
    Schedule,
    Status,
    Symbol,
    TaskId,
    TestSpec,
    Try,
    TryOptions,
    parse_command,
    parse_message,
)
from grammar.vocabulary import BUILD_TYPES, HELP_TOPICS, TASK_ID, VERBS


def parse_or_error(text: str) -> AnyCommand | ParseError:
    """The command, or the ParseError; any other exception fails the test."""
    try:
        return parse_command(text)
    except ParseError as error:
        return error


# --- any text ----------------------------------------------------------------------

VOCABULARY = [
    *(w for words in VERBS.values() for w in words),
    *["on", "for", "times", "and", "x3", "x0", "×2", "--dry-run", "-n", "preview"],
    *["failed", "all", "try:", ",", "(", ")", "[", "]"],
    *["'", '"', "“", "`"],
    *["-b", "-p", "-u", "-t", "-r", "-j", "--rebuild", "--setenv", "--tag", "--build=", "-bdo"],
    "@taskbot",
    "taskbot:",
    "/schedule",
    "!rt",
    "M(bc3)",
    "abc123f",
    "autoland@abc123f",
    "r7f3a",
    "linux64/debug",
    "test-*/debug-*",
    "\n",
    "```",
    "> ",
    "<!--",
    "-->",
    "\t",
]
command_like = st.lists(
    st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), max_size=14
).map(" ".join)


# Try syntax is shell-like: quotes, escapes and brackets in every arrangement.
TRY_PIECES = [
    "-b",
    "do",
    "o",
    "-p",
    "--platform",
    "-u",
    "-t",
    "-r",
    "-j",
    "all",
    "none",
    "a[",
    "']",
    '"]',
    "'",
    '"',
    "\\",
    "[",
    "]",
    ",",
    "x y",
    "-",
    "--rebuild",
    "3",
    "--setenv",
    "A=b",
    "mochitest-1[linux64,-win]",
    "'a b'",
    '"c\\"d"',
    "--tag",
    "=",
]
try_garbage = st.lists(
    st.one_of(st.sampled_from(TRY_PIECES), st.text(max_size=3)), max_size=12
).map(lambda words: "try: " + " ".join(words))


@given(st.one_of(st.text(), command_like, try_garbage))
@example("try: -b do -u a[']")
@example('try: -b do -u a["]')
@example("schedule \x00")
@example("try: -u '\\")
@example("schedule \\")
@example("\x1c\x0b schedule\xa0a-1\x85")  # Unicode spaces separate words too
def test_any_single_line_gives_a_command_or_a_parse_error(text: str) -> None:
    line = text.replace("\n", " ").replace("\r", " ")
    outcome = parse_or_error(line)
    if isinstance(outcome, ParseError):
        assert 1 <= outcome.column <= len(line) + 1
        assert outcome.message
        assert outcome.render()
    else:
        assert isinstance(outcome, Command)


@given(st.one_of(st.text(), command_like))
def test_any_message_gives_commands_or_parse_errors(text: str) -> None:
    for triggers in (GITHUB, IRC):
        for parsed in parse_message(text, triggers):
            assert (parsed.command is None) != (parsed.error is None)
            if parsed.error is not None:
                assert parsed.error.line == parsed.where.line
                assert parsed.error.source == parsed.where.source


# --- commands round-trip through their canonical text -----------------------------------

RESERVED = {"on", "for", "times", "and", "preview", "dry-run", "dryrun", "failed", "all"}


def plain_name(word: str) -> bool:
    lowered = word.lower()
    return (
        lowered not in RESERVED
        and not re.fullmatch(r"x[0-9]+", lowered)
        and not (len(word) >= 7 and re.fullmatch(r"[0-9a-fA-F]+", word))
        and not TASK_ID.fullmatch(word)
    )


words = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(plain_name)
names = words.map(Name)
labels = st.tuples(words, words).map(lambda parts: Label("/".join(parts)))
globs = st.tuples(words, st.sampled_from(["*", "?", "[od]"]), words).map(
    lambda parts: Glob("".join(parts))
)
group_part = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_+.-]{0,9}", fullmatch=True)
symbol_part = st.from_regex(r"[A-Za-z0-9_+.-]{1,10}", fullmatch=True)
symbols = st.builds(Symbol, group_part, symbol_part)
query_text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="`\x85"
        ),
        min_size=1,
    )
    .map(lambda t: " ".join(t.split()))
    .filter(bool)
)
queries = query_text.map(Query)
selectors = st.one_of(names, labels, globs, symbols, queries)
task_ids = st.from_regex(TASK_ID, fullmatch=True).map(TaskId)
request_ids = st.from_regex(r"r[0-9a-f]{4,16}", fullmatch=True).map(RequestId)

hex_nodes = st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True)
projects = st.from_regex(r"[a-z][a-z0-9-]{0,12}(/[a-z0-9-]{1,8})?", fullmatch=True)
revisions = st.one_of(
    st.none(),
    st.builds(Revision, st.one_of(st.none(), hex_nodes), st.one_of(st.none(), projects)),
)
platforms = st.from_regex(r"[a-z]{2,8}[0-9]{1,3}(-[a-z0-9]{1,5})?", fullmatch=True)
build_types = st.sampled_from(BUILD_TYPES)


@st.composite
def filter_sets(draw: st.DrawFn) -> tuple[PlatformFilter, ...]:
    """Filters in the form the grammar produces: pairs, then lone words crossed."""
    pairs = draw(st.lists(st.builds(PlatformFilter, platforms, build_types), max_size=2))
    lone_platforms: list[str | None] = draw(st.lists(platforms, max_size=2, unique=True))
    lone_builds: list[str | None] = draw(st.lists(build_types, max_size=2, unique=True))
    crossed = []
    if lone_platforms or lone_builds:
        crossed = [
            PlatformFilter(p, b)
            for p in (lone_platforms or [None])
            for b in (lone_builds or [None])
        ]
    return tuple(dict.fromkeys(pairs + crossed))


counts = st.integers(1, 20)
unique_selectors = st.lists(selectors, min_size=1, max_size=4, unique=True).map(tuple)

schedules = st.builds(Schedule, unique_selectors, revisions, filter_sets(), counts, st.booleans())
retriggers = st.builds(
    Retrigger,
    st.lists(st.one_of(selectors, task_ids), max_size=3, unique=True).map(tuple),
    st.booleans(),
    revisions,
    filter_sets(),
    counts,
    st.booleans(),
).filter(lambda r: r.selectors or r.failed)
cancels = st.one_of(
    st.builds(Cancel, st.just(()), st.just(True), revisions),
    st.builds(
        Cancel,
        st.lists(st.one_of(request_ids, task_ids), min_size=1, max_size=3, unique=True).map(tuple),
        st.just(False),
        revisions,
    ),
)
statuses = st.one_of(
    st.builds(Status, request_ids),
    st.builds(Status, st.none(), revisions),
)
jobs = st.builds(Jobs, st.one_of(st.just(""), query_text), revisions, filter_sets())
confirms = st.builds(Confirm, request_ids)
helps = st.builds(Help, st.one_of(st.none(), st.sampled_from([*VERBS, *HELP_TOPICS])))

spec_word = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True).filter(
    lambda w: w not in ("all", "none")
)
restrictions = st.builds(
    PlatformRestriction,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_. -]{0,12}[A-Za-z0-9]", fullmatch=True),
    st.booleans(),
)
selections_of_tests = st.one_of(
    st.none(),
    st.just(()),
    st.lists(
        st.builds(TestSpec, spec_word, st.lists(restrictions, max_size=3).map(tuple)),
        min_size=1,
        max_size=3,
    ).map(tuple),
)
# Any Unicode space in a command reads as a plain space (documented), quoted or not.
shell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="`"),
    max_size=12,
).map(lambda t: re.sub(r"[^\S ]", " ", t))
try_options = st.builds(
    TryOptions,
    build_types=st.sampled_from([("debug",), ("opt",), ("debug", "opt"), ("opt", "debug")]),
    platforms=st.one_of(
        st.none(),
        st.lists(
            st.one_of(platforms, st.from_regex(r"[a-z]{1,5} [a-z]{1,5}", fullmatch=True)),
            max_size=3,
        ).map(tuple),
    ),
    unittests=selections_of_tests,
    talos=selections_of_tests,
    raptor=selections_of_tests,
    jobs=st.one_of(st.none(), st.lists(spec_word, max_size=3, unique=True).map(tuple)),
    rebuild=counts,
    rebuild_talos=counts,
    rebuild_raptor=counts,
    artifact=st.booleans(),
    tag=st.one_of(st.none(), shell_text),
    no_retry=st.booleans(),
    env=st.lists(
        st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), shell_text), max_size=2
    ).map(tuple),
    interactive=st.booleans(),
    notifications=st.sampled_from([None, "all", "failure"]),
    gecko_profile=st.booleans(),
    include_nightly=st.booleans(),
)
tries = st.builds(Try, try_options, revisions, st.booleans())

commands = st.one_of(schedules, retriggers, cancels, statuses, jobs, confirms, helps, tries)


@given(commands)
def test_command_to_canonical_text_and_back(command: AnyCommand) -> None:
    text = command.canonical()
    assert parse_command(text) == command, text


@given(commands, st.sampled_from(["@taskbot ", "/", "@taskbot: "]))
def test_commands_survive_a_github_comment(command: AnyCommand, prefix: str) -> None:
    text = command.canonical()
    if prefix == "/" and text.startswith("try:"):
        prefix = "@taskbot "
    message = f"Some context.\n\n{prefix}{text}\n\nThanks!"
    (parsed,) = parse_message(message, GITHUB)
    assert parsed.command == command


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=30))
def test_a_single_word_schedules_or_explains(word: str) -> None:
    outcome = parse_or_error(f"schedule {word}")
    if isinstance(outcome, ParseError):
        assert outcome.column >= 10
    else:
        assert isinstance(outcome, Schedule)
