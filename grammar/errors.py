"""The one error a user can get back from the grammar, and the helpers that build its hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fix:
    """Replace ``text[start:end]`` of a command with ``replacement`` to correct it."""

    start: int
    end: int
    replacement: str

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]


class ParseError(ValueError):
    """A command that could not be understood, with where, why, and how to fix it.

    ``line`` and ``column`` are 1-based positions in the message the command came from;
    ``source`` is that whole line as typed, so ``render()`` can point at the column.
    ``suggestion`` is the corrected line when a correction is known. ``detail`` holds
    the parser's own explanation, for logs only: it is never part of ``str()``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        column: int,
        line: int = 1,
        length: int = 1,
        suggestion: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.length = max(1, length)
        self.suggestion = suggestion
        self.detail = detail

    @property
    def offending(self) -> str:
        """The text the error points at (empty at the end of the line)."""
        start = self.column - 1
        return self.source[start : start + self.length]

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Exceptions with keyword-only arguments need this to pickle (hypothesis, logging).
        return (_rebuild, (self.message, self.to_json()))

    def short(self) -> str:
        """One line for chat: where, what, and the corrected command if there is one."""
        text = f"column {self.column}: {self.message}"
        if self.suggestion:
            text += f" Try: {self.suggestion}"
        return text

    def render(self) -> str:
        """Several lines: the message, the line with a marker under the column, the fix."""
        # Keep tabs so the marker lines up under the column in a terminal.
        indent = "".join("\t" if c == "\t" else " " for c in self.source[: self.column - 1])
        marker = indent + "^" * min(self.length, max(1, len(self.source) - self.column + 1))
        lines = [str(self), f"  {self.source}", f"  {marker}"]
        if self.suggestion:
            lines.append(f"Try: {self.suggestion}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "length": self.length,
            "source": self.source,
            "offending": self.offending,
            "suggestion": self.suggestion,
        }


def _rebuild(message: str, data: dict[str, object]) -> ParseError:
    return ParseError(
        message,
        source=str(data["source"]),
        column=int(str(data["column"])),
        line=int(str(data["line"])),
        length=int(str(data["length"])),
        suggestion=data["suggestion"] if isinstance(data["suggestion"], str) else None,
    )


def nearest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate most like ``word`` (case-insensitive), or None if none is close."""
    options = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=cutoff)
    return options[found[0]] if found else None


def one_of(words: Iterable[str]) -> str:
    """``a``, ``b`` or ``c`` — a list of choices in plain words."""
    quoted = [f"`{w}`" for w in words]
    if len(quoted) < 2:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
