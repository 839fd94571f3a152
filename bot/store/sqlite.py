"""The store on SQLite (the default): one connection in WAL mode, used on the event loop.

Statements on a local SQLite file take microseconds; handing each to a worker thread cost
more in waiting for the thread pool than the statement itself (measured under webhook
load), so they run directly, one transaction at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.store.base import Connection, Store

BUSY_SECONDS = 5.0  # how long a transaction waits for another process's write
BUSY_POLL_SECONDS = 0.0002  # how often it tries again meanwhile


class _SqliteConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> int:
        return self._connection.execute(sql, args).rowcount

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        cursor = self._connection.execute(sql, args)
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SqliteStore(Store):
    """A SQLite file (``:memory:`` for tests); transactions are serialised by a lock."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        # Commits run on the event loop: with WAL, NORMAL syncs at checkpoints rather than
        # at every commit (an fsync on a busy disk held webhooks' acknowledgements up for
        # seconds). A crash of the bot loses nothing; a power cut may lose the last commits
        # (a deployment that must not lose them runs on PostgreSQL: DATABASE_URL).
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        # Every statement from here runs in a transaction begun by _begin, the one statement
        # that waits for another process's write; it waits itself, off SQLite's busy wait.
        self._connection.execute("PRAGMA busy_timeout=0")
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self._begin()
            try:
                yield _SqliteConnection(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def leave_checkpoints(self) -> None:
        """Never copy the log into the file at a commit here (a checkpoint is milliseconds
        of work and a sync): the bot's own connection does it, not the front process's,
        whose every commit holds an acknowledgement up."""
        self._connection.execute("PRAGMA wal_autocheckpoint=0")

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE; while another process writes (the front process keeps webhook
        deliveries in the same file), wait for it without holding up the event loop:
        SQLite's own wait sleeps in this thread, 1 ms and more at a time."""
        give_up = asyncio.get_running_loop().time() + BUSY_SECONDS
        while True:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                # the primary code: SQLITE_BUSY_RECOVERY (another connection recovering the
                # log after a crash) is waited for too
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if asyncio.get_running_loop().time() > give_up:
                    raise
            await asyncio.sleep(BUSY_POLL_SECONDS)

    async def close(self) -> None:
        self._connection.close()
