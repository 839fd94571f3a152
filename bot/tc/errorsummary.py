"""A failed test task's error summary (mozlog's ``*_errorsummary.log``, JSON lines) read into
the few lines a sheriff looks at first, as Treeherder shows them."""

from __future__ import annotations

import json
import re
from typing import Any

SUFFIX = "_errorsummary.log"
MAX_BYTES = 256 * 1024  # read at most this much of the artifact; the first lines are enough
SHOWN = 3
LINE_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def summary_names(artifacts: list[dict[str, Any]]) -> list[str]:
    """The error summaries among a run's artifacts (a task of several harnesses has several)."""
    return sorted(
        str(a["name"])
        for a in artifacts
        if isinstance(a, dict) and str(a.get("name", "")).endswith(SUFFIX)
    )


def first_errors(data: bytes, count: int = SHOWN) -> list[str]:
    """The first ``count`` failures an error summary records, one line each: unexpected
    test results, crashes and error logs (what Treeherder lists as failure lines). Lines
    that are not JSON, or not one of those, are passed over."""
    found: list[str] = []
    for raw in data.splitlines():
        if len(found) >= count:
            break
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        line = _line(entry) if isinstance(entry, dict) else None
        if line:
            found.append(_clean(line))
    return found


def _line(entry: dict[str, Any]) -> str | None:
    action = entry.get("action")
    if action == "test_result":
        status, expected = entry.get("status"), entry.get("expected", entry.get("status"))
        if status == expected or status in (entry.get("known_intermittent") or []):
            return None
        parts = [f"TEST-UNEXPECTED-{status}", str(entry.get("test", ""))]
        if entry.get("subtest"):
            parts.append(str(entry["subtest"]))
        if entry.get("message"):
            parts.append(str(entry["message"]))
        return " | ".join(parts)
    if action == "crash":
        signature = entry.get("signature") or "unknown top frame"
        return f"PROCESS-CRASH | {entry.get('test', '')} | application crashed [{signature}]"
    if action == "log" and entry.get("level") in ("ERROR", "CRITICAL"):
        return str(entry.get("message", ""))
    return None


def _clean(line: str) -> str:
    """One line of text: no control characters (no new IRC line, no terminal escapes), no
    backticks (it is shown in a code span), at most ``LINE_CHARS``."""
    text = _CONTROL.sub(" ", line).replace("`", "'").strip()
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…"
