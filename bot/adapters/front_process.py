"""Start the front process (bot/adapters/front.py) on the public port, watch it, start it
again if it dies, and wake the adapters whose inboxes it filled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.config import env_flag

log = logging.getLogger(__name__)
# Seconds before each new start of a front that died: while it is down, connections wait
# (GitHub waits 10 s for an answer), so never long; a front that cannot run costs one
# process start every 5 s.
RESTART_DELAYS = (0.1, 1.0, 2.0, 5.0)
STABLE_SECONDS = 60.0  # a front that ran this long before it died starts again at once
STOP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Fronted:
    """A webhook the front process receives: ``spec`` (``module:function``) makes its
    Receiver in that process; ``wake`` tells its adapter the inbox has deliveries."""

    spec: str
    source: str
    wake: Callable[[], None]


def wanted(env: Mapping[str, str]) -> bool:
    """Whether webhooks are received in a process of their own (TASKBOT_WEBHOOK_PROCESS,
    on unless set to 0)."""
    return env_flag(env, "TASKBOT_WEBHOOK_PROCESS", default=True)


def listen(host: str, port: int) -> socket.socket:
    """The public socket, bound and listening here: connections wait in its backlog while
    a front process starts (or starts again)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.listen(1024)
    listening.set_inheritable(True)
    return listening


class FrontProcess:
    """The front process on ``listening``, forwarding to ``upstream`` (the bot's own server
    on loopback); the store is PostgreSQL at DATABASE_URL, inherited, else ``sqlite``."""

    def __init__(
        self,
        listening: socket.socket,
        upstream: str,
        fronted: Sequence[Fronted],
        sqlite: str | None,
    ) -> None:
        self.listening = listening
        self.upstream = upstream
        self.fronted = {f.source: f for f in fronted}
        self.sqlite = sqlite
        self.starts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "bot.adapters.front", "--fd", str(self.listening.fileno())]
        command += ["--upstream", self.upstream]
        for fronted in self.fronted.values():
            command += ["--receiver", fronted.spec]
        if self.sqlite:
            command += ["--sqlite", self.sqlite]
        return command

    async def __aenter__(self) -> FrontProcess:
        self._watcher = asyncio.create_task(self._watch())
        started = asyncio.create_task(self._started.wait())
        await asyncio.wait({self._watcher, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._watcher.done():  # it could not start: say why
            self._watcher.result()
            raise RuntimeError("the front process could not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                log.warning("the front process did not stop within %s s: killed", STOP_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        """Run the front; if it exits (or cannot start) while the bot serves on, start it
        again (connections wait in the socket's backlog meanwhile)."""
        failures = 0
        while not self._stopping.is_set():
            began = asyncio.get_running_loop().time()
            try:
                code: int | str = await self._run()
            except OSError as error:  # no process could be made (too many open files, ...)
                if not self._started.is_set():
                    raise
                code = f"could not start: {error}"
            if self._stopping.is_set():
                return
            if asyncio.get_running_loop().time() - began > STABLE_SECONDS:
                failures = 0
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            failures += 1
            # 0: it was told to stop (a signal to the whole process group, as a terminal's
            # Ctrl-C sends): the bot is most likely stopping too, and then it stays stopped.
            say = log.info if code == 0 else log.error
            say("the front process exited (%s); starting it again in %s s", code, delay)
            await asyncio.sleep(delay)

    async def _run(self) -> int:
        """One front process, from start to exit; each line it writes wakes an adapter."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,  # closed when this process ends: the front stops
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(self.listening.fileno(),),
        )
        self.starts += 1
        self._started.set()
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            fronted = self.fronted.get(line.decode(errors="replace").strip())
            if fronted is not None:
                fronted.wake()
        return await self.process.wait()
