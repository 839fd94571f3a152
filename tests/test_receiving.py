"""The webhook handler shared by the bot's process and the front process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.front import end_to_end, unforwardable
from bot.adapters.github.webhook import receiver
from bot.adapters.receiving import InboxWriter, handler
from bot.store import SqliteStore
from tests.conftest import reference_path
from tests.test_github_events import SECRET, signed


async def test_a_delivery_that_cannot_be_kept_is_answered_503_to_be_sent_again(
    tmp_path: Path,
) -> None:
    """The store is locked past its wait (another process holds it): no 500 with a
    traceback, but 503 and Retry-After; sent again, it is kept."""
    from bot.store import sqlite as sqlite_store

    path = tmp_path / "taskbot.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    woken = []
    app = web.Application()
    github = receiver(SECRET)
    app.router.add_post(
        github.path, handler(github, InboxWriter(store, github.source), lambda: woken.append(1))
    )
    raw = reference_path("github", "webhook-examples", "issue_comment.created.0.json").read_bytes()
    headers = signed(raw, "issue_comment")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    wait = sqlite_store.BUSY_SECONDS
    sqlite_store.BUSY_SECONDS = 0.2
    try:
        async with TestClient(TestServer(app)) as client:
            response = await client.post(github.path, data=raw, headers=headers)
            assert response.status == 503
            assert response.headers["Retry-After"] == "10"
            assert "again" in (await response.json())["error"]
            assert woken == []
            other.execute("ROLLBACK")
            response = await client.post(github.path, data=raw, headers=headers)
            assert response.status == 202
            assert woken == [1]
    finally:
        sqlite_store.BUSY_SECONDS = wait
        other.close()
        await store.close()


def test_the_front_forwards_no_header_the_connection_names() -> None:
    headers = {
        "Connection": "close, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Keep-Alive": "timeout=5",
        "Authorization": "Bearer t",
        "Host": "example.org",
    }
    assert dict(end_to_end(headers)) == {"Authorization": "Bearer t"}


def test_a_header_the_front_cannot_forward_as_it_came_is_named() -> None:
    assert unforwardable({"Accept": "*/*"}) is None
    odd = b"Bearer \xff\xfetoken".decode("utf-8", "surrogateescape")
    assert unforwardable({"Accept": "*/*", "Authorization": odd}) == "Authorization"
