"""Grammar of Gecko's try option syntax (``try: -b do -p linux64 -u mochitest-1``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyparsing as pp

from grammar.lexicon import Argument, Rule

Arity = Literal["flag", "value", "optional"]


@dataclass(frozen=True, slots=True)
class TryOption:
    """One option of try syntax: where its value goes, its spellings, and what it takes."""

    dest: str
    names: tuple[str, ...]
    arity: Arity


# The options of Gecko's own parser (gecko_taskgraph/try_option_syntax.py), same
# spellings and arities: a ``value`` option needs one word, an ``optional`` one
# takes a word when the next does not start with ``-`` (else ``all``).
TRY_OPTIONS: tuple[TryOption, ...] = (
    TryOption("build_types", ("-b", "--build"), "value"),
    TryOption("platforms", ("-p", "--platform"), "optional"),
    TryOption("unittests", ("-u", "--unittests"), "optional"),
    TryOption("talos", ("-t", "--talos"), "optional"),
    TryOption("raptor", ("-r", "--raptor"), "optional"),
    TryOption("jobs", ("-j", "--job"), "value"),
    TryOption("interactive", ("-i", "--interactive"), "flag"),
    TryOption("all_emails", ("-e", "--all-emails"), "flag"),
    TryOption("failure_emails", ("-f", "--failure-emails"), "flag"),
    TryOption("rebuild", ("--rebuild",), "value"),
    TryOption("rebuild_talos", ("--rebuild-talos",), "value"),
    TryOption("rebuild_raptor", ("--rebuild-raptor",), "value"),
    TryOption("env", ("--setenv",), "value"),
    TryOption("tag", ("--tag",), "value"),
    TryOption("gecko_profile", ("--gecko-profile",), "flag"),
    TryOption("no_retry", ("--no-retry",), "flag"),
    TryOption("include_nightly", ("--include-nightly",), "flag"),
    TryOption("artifact", ("--artifact",), "flag"),
)
OPTION_NAMES = tuple(name for option in TRY_OPTIONS for name in option.names)

# One shell word: quoted parts, backslash escapes, and ``[...]`` platform lists, in which
# Gecko lets spaces stand unescaped (``-u mochitest[Windows 10]``).
SHELL_WORD = r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\[[^\]\s]*|\\.|[^\s'"\\\[])+"""


def _option_rules(option: TryOption) -> list[Rule]:
    """``-b do``, ``-bdo``, ``--build do`` and ``--build=do`` (or the flag alone)."""
    rules = []
    for name in option.names:
        escaped = re.escape(name)
        argument = None
        if option.arity == "flag":
            pattern = escaped + r"(?!\S)"
        else:
            pattern = escaped + r"(?:=|(?!\S))" if name.startswith("--") else escaped
            what = f"value of {name}" if option.arity == "value" else None
            argument = Argument("try_value", r"(?!-)" + SHELL_WORD, what)
        rules.append(Rule(f"try:{option.dest}", pattern, argument=argument))
    return rules


def _sorted_options() -> list[TryOption]:
    # Longer spellings first, so ``--rebuild-talos`` is not read as ``--rebuild``.
    return sorted(TRY_OPTIONS, key=lambda o: -max(len(n) for n in o.names))


OPTION_RULES: tuple[Rule, ...] = tuple(r for o in _sorted_options() for r in _option_rules(o))
UNKNOWN_OPTION = Rule("try_unknown_option", r"-\S*")


def dequote(word: str) -> str:
    """The text a shell would make of ``word``: quotes removed, escapes applied. Total: a
    quote never closed runs to the end, and a backslash at the end stands for itself."""
    out: list[str] = []
    i, size = 0, len(word)
    while i < size:
        char = word[i]
        if char == "'":
            end = word.find("'", i + 1)
            end = size if end < 0 else end
            out.append(word[i + 1 : end])
            i = end + 1
        elif char == '"':
            i += 1
            while i < size and word[i] != '"':
                if word[i] == "\\" and i + 1 < size and word[i + 1] in '"\\$`\n':
                    i += 1
                out.append(word[i])
                i += 1
            i += 1
        elif char == "\\" and i + 1 < size:
            out.append(word[i + 1])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


# --- test specs: ``mochitest-1[linux64,-windows10-64],reftest`` ----------------------

_PLATFORM = pp.Regex(r"\s*-?[^,\[\]\s][^,\[\]]*").set_name("platform")
_PLATFORM_LIST = (
    pp.Suppress("[") + pp.Group(pp.DelimitedList(_PLATFORM))("platforms") + pp.Suppress("]")
).set_name("[platforms]")
_TEST_NAME = pp.Regex(r"[^,\[\]\s]+").set_name("test name")
TEST_SPEC = pp.Group(_TEST_NAME("name") + pp.Opt(_PLATFORM_LIST)).set_name("test spec")
TEST_SPECS = (pp.DelimitedList(TEST_SPEC) + pp.StringEnd()).set_name("test specs")
TEST_SPECS.parse_with_tabs()
