"""Starting the bot as its own process for a benchmark: a free port, and waiting until ready."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until the bot at ``url`` answers /readyz with 200; AssertionError if it exits first
    or takes longer than ``seconds``."""
    async with aiohttp.ClientSession() as session:
        for _ in range(int(seconds * 10)):
            assert process.poll() is None, "the bot exited at start (see its log)"
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the bot did not get ready in {seconds:g} s")
