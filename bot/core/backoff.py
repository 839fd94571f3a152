"""How long a connection that ended waits before trying again: exponential backoff with
jitter, started afresh after a connection that lasted."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """``base`` seconds after the first failure, doubling to ``cap``, each wait a random
    half to whole of that; a connection that lasted ``stable_after`` seconds resets it."""

    base: float
    cap: float
    stable_after: float = 60.0
    failures: int = 0

    def delay(self, lasted: float) -> float:
        """The wait before the next attempt, after one that lasted ``lasted`` seconds."""
        self.failures = 0 if lasted > self.stable_after else self.failures + 1
        ceiling = min(self.cap, self.base * 2.0 ** max(self.failures - 1, 0))
        return ceiling * random.uniform(0.5, 1.0)
