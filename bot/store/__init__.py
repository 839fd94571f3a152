"""The durable store: requests, plans, task states, replies, deliveries and an audit log."""

from __future__ import annotations

from pathlib import Path

from bot.store.base import STATES, PlannedTask, RequestRecord, RequestState, Store
from bot.store.sqlite import SqliteStore


async def open_store(
    database_url: str | None, sqlite_path: str | Path | None, *, migrate: bool = True
) -> Store:
    """PostgreSQL when ``database_url`` is set, else SQLite at ``sqlite_path``; migrated
    unless ``migrate`` is False (a process beside the bot's, which migrated it)."""
    store: Store
    if database_url:
        from bot.store.postgres import PostgresStore

        store = await PostgresStore.connect(database_url)
    elif sqlite_path is not None:
        store = SqliteStore(sqlite_path)
    else:
        raise ValueError("a store needs DATABASE_URL or a SQLite file")
    if migrate:
        await store.migrate()
    return store


__all__ = [
    "STATES",
    "PlannedTask",
    "RequestRecord",
    "RequestState",
    "SqliteStore",
    "Store",
    "open_store",
]
