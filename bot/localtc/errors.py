"""Errors shaped like the real services': an HTTP status, a code, and a message."""

from __future__ import annotations

from typing import Any


class TaskclusterError(Exception):
    """A request the service refuses; turned into ``{code, message, requestInfo}``."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def input_error(message: str) -> TaskclusterError:
    return TaskclusterError(400, "InputError", message)


def not_found(message: str) -> TaskclusterError:
    return TaskclusterError(404, "ResourceNotFound", message)


def conflict(message: str) -> TaskclusterError:
    return TaskclusterError(409, "RequestConflict", message)
