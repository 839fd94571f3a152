"""The objects every part of a request's life uses: settings, store, Taskcluster, the push
reader, registered adapters, background work, and this replica's holds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from bot.core import leases
from bot.core.adapter import Adapter
from bot.core.request import Request, derived_request_id
from bot.core.settings import Settings
from bot.graph import GraphCache
from bot.store import Store
from bot.store.base import LEASE_SECONDS
from bot.tc.clients import Clients
from bot.tc.credentials import ScopeBook
from bot.tc.decision import DecisionReader


def default_instance(env: Mapping[str, str]) -> str:
    """This replica's name: TASKBOT_INSTANCE, Heroku's DYNO (web.1), or the host name. A
    restarted replica keeps its name, so it takes back its own requests at once."""
    return env.get("TASKBOT_INSTANCE") or env.get("DYNO") or socket.gethostname()


@dataclass
class Runtime:
    """Everything a command may use, passed in: settings, store, Taskcluster clients, and
    the adapters registered (by source)."""

    settings: Settings
    store: Store
    clients: Clients
    decisions: DecisionReader = field(init=False)
    _scope_book: ScopeBook | None = field(default=None, init=False, repr=False)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # This process among the replicas sharing the store, and how long its holds last.
    instance: str = field(default_factory=lambda: default_instance(os.environ))
    lease_seconds: float = LEASE_SECONDS
    adapters: dict[str, Adapter] = field(default_factory=dict)
    following: set[str] = field(default_factory=set)  # requests this process follows now
    # Requests this process is submitting now; each event is set when that submission ends.
    submitting: dict[str, asyncio.Event] = field(default_factory=dict)
    _locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.decisions = DecisionReader(
            self.clients.index, self.clients.queue, self.clients.session, GraphCache()
        )

    @property
    def scopes(self) -> ScopeBook:
        """What the bot's client and the requesters' roles hold (kept a minute); asked
        afresh of new clients (credentials replaced)."""
        if self._scope_book is None or self._scope_book.auth is not self.clients.auth:
            self._scope_book = ScopeBook(self.clients.auth)
        return self._scope_book

    def register(self, adapter: Adapter) -> None:
        """Plug in a place people talk; it replaces any adapter of the same source."""
        if not adapter.source:
            raise ValueError(f"{type(adapter).__name__} has no source name")
        self.adapters[adapter.source] = adapter

    def adapter(self, source: str) -> Adapter | None:
        return self.adapters.get(source)

    # --- request ids -------------------------------------------------------------------------

    async def request_id_for(self, request: Request, key: str | None) -> str:
        """A new id; for a command with a key (``command_keys``), one derived from it, so a
        retry after a crash finds the request the first attempt made."""
        if key is None:
            return await self.new_request_id()
        return derived_request_id(request.source, key)

    async def new_request_id(self) -> str:
        while True:
            candidate = "r" + secrets.token_hex(3)
            if await self.store.request(candidate) is None:
                return candidate

    # --- holds ---------------------------------------------------------------------------------

    def _claim(self, request_id: str) -> leases.Claim:
        return lambda: self.store.claim_request(request_id, self.instance, lease=self.lease_seconds)

    async def claim(self, request_id: str) -> bool:
        """Take or renew this replica's hold on a request, once; False: another has it."""
        return await self._claim(request_id)()

    async def hold(self, request_id: str) -> bool:
        """Take the request for this replica, waiting out a dead replica's hold."""
        return await leases.hold(self._claim(request_id), self.lease_seconds)

    def renewing(self, request_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """Keep the hold on a request while inside; the event says it was lost."""
        return leases.renewed(self._claim(request_id), self.lease_seconds)

    @contextlib.asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """One task of this process at a time for ``key`` (two deliveries of one comment
        handled at once make the same request: the second waits, then carries it on)."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    # --- background work -----------------------------------------------------------------------

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def idle(self, timeout: float) -> bool:
        """Wait until background work (submissions, tracking) is done; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.background:
                    await asyncio.wait(set(self.background))
                return True
        return False

    async def stop(self, grace: float = 5.0) -> None:
        """Stop background work (submissions, tracking): what it did is in the store, and
        the next start (or another replica) carries on from there."""
        tasks = list(self.background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
