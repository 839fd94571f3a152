"""Logging: one JSON object per line when serving (with the request id being handled),
plain text in the console."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

# The request (or delivery) being handled by the current task, for every log line.
current_request: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_request", default=None
)


# What a log call may add with ``extra={"fields": {...}}``: kept as JSON fields.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request", "exception"}`` per line, and the
    call's own ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = current_request.get()
        if request is not None:
            entry["request"] = request
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Log to standard error, as JSON lines or as text."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
