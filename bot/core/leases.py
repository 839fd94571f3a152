"""Holds one replica keeps on shared work (a request, a delivery): taking one, and renewing it
while the work runs, with word when another replica took it over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

Claim = Callable[[], Awaitable[bool]]  # take or renew the hold; False: another replica has it


async def hold(claim: Claim, lease_seconds: float) -> bool:
    """Take the hold. Another replica has it: if that one died, its hold runs out within a
    lease, so wait up to that long (and a half); if it is alive, it keeps it: False."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + lease_seconds * 1.5
    while not await claim():
        if loop.time() > give_up:
            return False
        await asyncio.sleep(lease_seconds / 6)
    return True


@contextlib.asynccontextmanager
async def renewed(claim: Claim, lease_seconds: float) -> AsyncIterator[asyncio.Event]:
    """Renew a hold every third of its lease while inside; the event yielded is set when a
    renewal failed (this replica stalled past its lease and another took the work over)."""
    lost = asyncio.Event()

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            if not await claim():
                lost.set()
                return

    renewer = asyncio.create_task(renew())
    try:
        yield lost
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await renewer
