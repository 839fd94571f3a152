"""Run ``python -m bot localtc`` (and see a served bot get ready) as separate processes, for
benchmarks, demos and tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Running:
    """What the process printed on start: where it is, its root client, the seeded push."""

    info: dict[str, Any]
    process: subprocess.Popen[str]

    @property
    def root_url(self) -> str:
        return str(self.info["rootUrl"])

    def options(self, **extra: Any) -> dict[str, Any]:
        """Options for the official client, with the root client's credentials."""
        credentials = {"clientId": self.info["clientId"], "accessToken": self.info["accessToken"]}
        return {"rootUrl": self.root_url, "credentials": credentials, **extra}

    def environment(self) -> dict[str, str]:
        """The standard TASKCLUSTER_* variables that point a program at this Taskcluster."""
        return {
            "TASKCLUSTER_ROOT_URL": self.root_url,
            "TASKCLUSTER_CLIENT_ID": str(self.info["clientId"]),
            "TASKCLUSTER_ACCESS_TOKEN": str(self.info["accessToken"]),
        }


@contextlib.contextmanager
def local_taskcluster(*arguments: str, stderr: Any = subprocess.DEVNULL) -> Iterator[Running]:
    """Start it with ``arguments`` (e.g. ``--seed-push``); stop it with SIGTERM on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "localtc", *arguments],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"python -m bot localtc {' '.join(arguments)} exited before starting"
            )
        yield Running(json.loads(line), process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def bot_ready(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    http: aiohttp.ClientSession | None = None,
    seconds: float = 60,
) -> None:
    """Until the bot served at ``url`` answers /readyz with 200; AssertionError when its
    process exits first or it takes longer than ``seconds``."""
    if http is None:
        async with aiohttp.ClientSession() as session:
            return await bot_ready(url, process, http=session, seconds=seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        assert process.poll() is None, "the bot exited at start (see its log)"
        try:
            async with http.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return None
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")
