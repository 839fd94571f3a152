"""Query-string and URL-parameter checks and offset paging, as Taskcluster's API library does.

The real services refuse a query-string parameter a method does not declare, and one whose
value does not match the method's pattern, with ``400 InvalidRequestArguments``; likewise a
URL parameter that does not match its pattern. Paged lists take ``limit`` (digits; at most
1000 rows, more is cut to 1000) and an opaque ``continuationToken``, given back while more
rows follow.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from multidict import MultiMapping

from bot.localtc.errors import TaskclusterError

T = TypeVar("T")

MAX_LIMIT = 1000
# The patterns of the real API library's paged lists (``paginateResults.query``).
PAGINATE_QUERY: Mapping[str, re.Pattern[str]] = {
    "continuationToken": re.compile(r"."),
    "limit": re.compile(r"^[0-9]+$"),
}
_TOKEN_PREFIX = "offset:"


def invalid_arguments(message: str) -> TaskclusterError:
    return TaskclusterError(400, "InvalidRequestArguments", message)


def check_query(query: MultiMapping[str], allowed: Mapping[str, re.Pattern[str]]) -> None:
    """Refuse a parameter the method does not take, a repeated one (the real service reads
    it as a list: "must be a string"), and a value its pattern does not match; ``bewit`` (a
    signed URL's) is always allowed."""
    problems: list[str] = []
    for key in dict.fromkeys(query.keys()):
        values = query.getall(key)
        if key == "bewit":
            continue
        pattern = allowed.get(key)
        if pattern is None:
            problems.append(f"Query-string parameter: {key} is not supported!")
        elif len(values) != 1:
            problems.append(f"Query-string parameter: {key} must be a string!")
        elif not pattern.search(values[0]):
            problems.append(
                f'Query-string parameter: {key}="{values[0]}" does not match expression: '
                f"/{pattern.pattern}/"
            )
    if problems:
        raise invalid_arguments("\n".join(problems))


def check_params(params: Mapping[str, str], patterns: Mapping[str, re.Pattern[str]]) -> None:
    """Refuse a URL parameter that does not match its pattern."""
    problems = [
        f"URL parameter '{name}' given as '{value}' must match regular expression: "
        f"'/{patterns[name].pattern}/'"
        for name, value in params.items()
        if name in patterns and not patterns[name].search(value)
    ]
    if problems:
        raise invalid_arguments("Invalid URL patterns:\n" + "\n".join(problems))


def page_size(query: Mapping[str, str]) -> int:
    """The page size ``limit`` asks for (the query already checked): at most 1000.

    ``limit=0`` is refused: the real service then answers an empty page with a null token,
    which its own output schema rejects (a 500) whenever rows exist, so no caller can rely
    on it; the stand-in says so at once instead.
    """
    limit = int(query.get("limit", str(MAX_LIMIT)))
    if limit < 1:
        raise invalid_arguments('Query-string parameter: limit="0" must be at least 1')
    return min(limit, MAX_LIMIT)


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    """The offset a token this module made stands for; 0 without one.

    Stricter than the real service, on purpose: its tokens are hashids, and one it cannot
    decode silently restarts the list from its first row (a client that mangles tokens
    loops forever); the stand-in refuses a token it did not issue with
    ``InvalidRequestArguments`` so such a client fails its tests instead.
    """
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text.removeprefix(_TOKEN_PREFIX)
    if not text.startswith(_TOKEN_PREFIX) or not digits.isdigit() or not digits.isascii():
        raise invalid_arguments(
            f'Query-string parameter: continuationToken="{token}" is not a token this service gave'
        )
    return int(digits)


def paginate(rows: Sequence[T], query: Mapping[str, str]) -> tuple[list[T], str | None]:
    """One page of ``rows`` (in their order) and the token of the next, if more follow."""
    offset = decode_token(query.get("continuationToken"))
    size = page_size(query)
    page = list(rows[offset : offset + size])
    more = len(rows) > offset + size
    return page, encode_token(offset + size) if more else None
