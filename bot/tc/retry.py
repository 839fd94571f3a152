"""Which Taskcluster failures are worth retrying, and the backoff between tries."""

from __future__ import annotations

import asyncio
import random

import aiohttp
from taskcluster.exceptions import TaskclusterConnectionError, TaskclusterRestFailure


def is_transient(error: BaseException) -> bool:
    """A 5xx, a dropped or refused connection, or a timeout: the same call may succeed later.

    The async client raises aiohttp's own errors once its internal retries are spent.
    """
    if isinstance(error, TaskclusterRestFailure):
        return error.status_code is not None and error.status_code >= 500
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status >= 500
    return isinstance(
        error,
        TaskclusterConnectionError | aiohttp.ClientError | asyncio.TimeoutError | ConnectionError,
    )


def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Full-jitter exponential backoff for the given attempt (1-based)."""
    return random.uniform(0, min(cap, base * 2**attempt))
