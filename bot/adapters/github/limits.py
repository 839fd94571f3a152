"""GitHub's rate limits: wait as GitHub asks, retry, and give up only after a bounded time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import gidgethub

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_WAIT = 120.0  # longest single wait the bot accepts before retrying
BACKOFF = 0.5  # seconds: the first wait after a 5xx or a dropped connection, doubling


def wait_for(error: gidgethub.HTTPException, attempt: int) -> float | None:
    """Seconds to wait before retrying ``error``, or None when retrying cannot help.

    Primary limit (403 with no requests remaining): until the reset. Secondary limits
    (429, or 403 saying so): ``Retry-After``, else exponential backoff from a minute, as
    GitHub's documentation asks. 5xx: a short backoff.
    """
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    if isinstance(error, gidgethub.RateLimitExceeded):
        reset: dt.datetime = error.rate_limit.reset_datetime
        return max(1.0, float((reset - dt.datetime.now(dt.UTC)).total_seconds()))
    status = int(error.status_code)
    secondary = status == 429 or (status == 403 and "secondary rate limit" in str(error).lower())
    if secondary:
        if headers.get("retry-after", "").isdigit():
            return float(str(headers["retry-after"]))
        return float(60 * 2 ** (attempt - 1))
    if status >= 500:
        return random.uniform(0, min(30.0, BACKOFF * 2**attempt))
    return None


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 6,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call()`` until it succeeds, waiting as GitHub asks between tries (and briefly after
    a dropped connection)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except gidgethub.HTTPException as error:
            delay = wait_for(error, attempt)
            if delay is None or attempt == attempts:
                raise
            log.warning("GitHub answered %s; retrying in %.0fs", error.status_code, delay)
            await sleep(min(delay, MAX_WAIT))
        except (TimeoutError, aiohttp.ClientError) as error:
            if attempt == attempts:
                raise
            delay = random.uniform(0, min(30.0, BACKOFF * 2**attempt))
            log.warning("GitHub unreachable (%s); retrying in %.1fs", error, delay)
            await sleep(delay)
    raise AssertionError("unreachable")
