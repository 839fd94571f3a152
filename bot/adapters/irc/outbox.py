"""Outgoing lines, paced so the server never sees a flood: a token bucket for the
connection that every line the bot sends draws on, one queue per person in each place
served in turn, progress lines coalesced."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines a second."""

    burst: int = 4
    rate: float = 1.0
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def wait_time(self) -> float:
        """Seconds until a line may go (0: now)."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1

    def spend(self, lines: int) -> None:
        """Count lines sent outside the queue (JOIN, WHO, ...): the server counts them too."""
        self.wait_time()
        self.tokens -= lines

    def empty(self) -> None:
        """Start from nothing: registration has just used the server's allowance."""
        self.wait_time()
        self.tokens = min(self.tokens, 0.0)


@dataclass
class Line:
    target: str
    text: str
    key: str | None = None  # a later line with the same key replaces this one if unsent
    to: str = ""  # the person it answers: each person's lines take turns with the others'
    raw: bool = False  # a command of the bot's own (WHO, SASL), not a message

    @property
    def queue(self) -> tuple[str, str]:
        return (self.target, self.to)


class Outbox:
    """Lines to send, kept across reconnections: nothing queued is lost while the bot is away."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self._queues: OrderedDict[tuple[str, str], deque[Line]] = OrderedDict()
        self._ready = asyncio.Event()
        self.sent = 0

    def put(self, line: Line) -> None:
        queue = self._queues.setdefault(line.queue, deque())
        if line.key is not None:
            for index, pending in enumerate(queue):
                if pending.key == line.key:
                    queue[index] = line
                    return
        queue.append(line)
        self._ready.set()

    def drop_commands(self) -> None:
        """Forget the bot's own commands not sent yet: they belonged to a connection that is
        gone (messages stay, for the next one)."""
        for key in [k for k, queue in self._queues.items() if queue and queue[0].raw]:
            self._queues[key] = deque(line for line in self._queues[key] if not line.raw)

    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def _next(self) -> Line | None:
        """The head of the next queue, each person in each place taking turns: one person's
        long answer never holds up another's first line."""
        for key in list(self._queues):
            queue = self._queues[key]
            if not queue:
                del self._queues[key]
                continue
            self._queues.move_to_end(key)
            return queue[0]
        return None

    def _done(self, line: Line) -> None:
        queue = self._queues.get(line.queue)
        if queue and queue[0] is line:
            queue.popleft()

    async def run(self, send: Callable[[Line], bool], connected: asyncio.Event) -> None:
        """Send lines while ``connected``; ``send`` returns False when the line did not go
        (the connection dropped): it stays first in its queue for the next connection."""
        while True:
            line = self._next()
            if line is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            await connected.wait()
            while (delay := self.bucket.wait_time()) > 0:
                await asyncio.sleep(delay)
            if not send(line):
                await asyncio.sleep(0.5)
                continue
            self.bucket.take()
            self.sent += 1
            self._done(line)
