"""Taskcluster's date-time form: UTC with milliseconds and a ``Z``, written and read."""

from __future__ import annotations

import datetime as dt


def format_time(moment: dt.datetime) -> str:
    """``2026-11-28T12:00:00.123Z``, the form the Queue takes and gives."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> dt.datetime:
    """An aware datetime from an RFC 3339 date-time (``Z`` or an offset)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
