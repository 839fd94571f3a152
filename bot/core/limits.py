"""Limits on what one message and one person may ask: commands per minute, tasks per message."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimit:
    """At most so many commands a person (per source) in any minute; over it, one warning
    a minute, so a flood gets one answer instead of one per line."""

    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _warned: dict[tuple[str, str], float] = field(default_factory=dict)

    def allow(self, source: str, actor: str, per_minute: int) -> bool:
        """Count a command of ``actor``; False when it is over the limit (not counted)."""
        key, now = (source, actor.lower()), self.clock()
        recent = self._seen.setdefault(key, deque())
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= per_minute:
            return False
        recent.append(now)
        if len(self._seen) > 10_000:  # forget people who went quiet
            self._forget(now)
        return True

    def warn(self, source: str, actor: str) -> bool:
        """Whether to tell ``actor`` they are over the limit (once a minute)."""
        key, now = (source, actor.lower()), self.clock()
        if now - self._warned.get(key, -60.0) < 60.0:
            return False
        self._warned[key] = now
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, seen in self._seen.items() if not seen or now - seen[-1] >= 60.0]:
            del self._seen[key]
            self._warned.pop(key, None)


@dataclass
class MessageBudget:
    """New tasks the commands of one message have submitted so far: the task cap and the
    confirmation threshold apply to the whole message, not to each line."""

    tasks: int = 0
