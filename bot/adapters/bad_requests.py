"""Requests that are not valid HTTP, or that end badly, are answered and logged in one plain
line: never their bytes (they may hold a token), never a traceback for a client's doing."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

# A client that went away mid-request, or whose compressed body is broken: its doing.
CLIENT_FAILURES = (HttpProcessingError, ConnectionResetError)


class BadRequests(logging.Filter):
    """aiohttp logs a request it cannot parse with the offending bytes, which may hold a
    bearer token (a malformed Authorization header), and a client gone mid-body with a
    traceback: the line is kept, the bytes and the traceback are not."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not _clients_doing(error):
            return True
        peer = record.args[-1] if isinstance(record.args, tuple) and record.args else "?"
        if isinstance(error, HttpProcessingError) and error.code:
            record.msg = "refused a request that is not valid HTTP (%s) from %s"
            record.args = (error.code, peer)
        else:
            record.msg = "a request ended badly on the client's side (%s)"
            record.args = (type(error).__name__,)
            record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = None
        record.exc_text = None
        return True


def _clients_doing(error: BaseException) -> bool:
    """The error, or what it was raised from, is a client's malformed or broken request."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CLIENT_FAILURES) or type(seen).__name__ in (
            "RequestPayloadError",
            "ContentEncodingError",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _plain_parse_errors() -> None:
    """Answer a request aiohttp cannot parse without echoing its bytes (they may hold a
    token): aiohttp puts them in the 400's body."""
    if getattr(RequestHandler.handle_error, "_plain", False):
        return
    original = RequestHandler.handle_error

    def handle_error(
        self: RequestHandler,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            message = f"{status} {HTTPStatus(status).phrase}: this is not a valid HTTP request."
        return original(self, request, status, exc, message)

    handle_error._plain = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]


def quiet_about_bad_requests() -> None:
    """Install both, once per process (the bot's server and the front process)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequests) for f in server_log.filters):
        server_log.addFilter(BadRequests())
    _plain_parse_errors()
