"""The store on SQLite and on the real PostgreSQL at 127.0.0.1:5432, with the same tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from bot.store import PlannedTask, SqliteStore, Store
from bot.store.postgres import PostgresStore, numbered
from bot.store.schema import MIGRATIONS

POSTGRES_URL = os.environ.get(
    "TASKBOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextlib.asynccontextmanager
async def empty_schema() -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """An administrator's connection and a new, empty schema, dropped afterwards."""
    try:
        admin = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be running for CI at {POSTGRES_URL}: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({error}); CI runs this for real")
    schema = f"taskbot_test_{secrets.token_hex(6)}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield admin, schema
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "taskbot.sqlite3")
        await sqlite.migrate()
        yield sqlite
        await sqlite.close()
        return
    async with empty_schema() as (_, schema):
        postgres = await PostgresStore.connect(
            POSTGRES_URL, server_settings={"search_path": schema}
        )
        try:
            await postgres.migrate()
            yield postgres
        finally:
            await postgres.close()


async def test_migrations_run_once(store: Store) -> None:
    assert await store.migrate() == len(MIGRATIONS)
    assert await store.migrate() == len(MIGRATIONS)


async def test_a_delivery_is_processed_once_even_when_raced(store: Store) -> None:
    assert await store.first_delivery("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert not await store.first_delivery("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert await store.first_delivery("irc", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    results = await asyncio.gather(*(store.first_delivery("github", "same-id") for _ in range(20)))
    assert sum(results) == 1


async def test_requests_move_through_states(store: Store) -> None:
    record = await store.add_request(
        "r7f3a",
        source="github",
        actor="octocat",
        place="octo/repo#12",
        text="@taskbot schedule a-1",
        command="schedule a-1",
        project="autoland",
    )
    assert (record.state, record.revision, record.decision_task_id) == ("received", None, None)
    await store.set_state("r7f3a", "submitting", decision_task_id="DECISION", revision="abc123f")
    await store.add_request(
        "r8a8a", source="irc", actor="sheriff", place="#sheriffs", text="status"
    )
    assert [r.id for r in await store.requests_in("submitting")] == ["r7f3a"]
    again = await store.request("r7f3a")
    assert again is not None
    assert (again.state, again.decision_task_id, again.revision) == (
        "submitting",
        "DECISION",
        "abc123f",
    )
    await store.set_state("r7f3a", "failed", error="Taskcluster said no")
    failed = await store.request("r7f3a")
    assert failed is not None
    assert (failed.state, failed.error, failed.decision_task_id) == (
        "failed",
        "Taskcluster said no",
        "DECISION",
    )
    assert [r.id for r in await store.recent_requests(actor="sheriff")] == ["r8a8a"]
    with pytest.raises(ValueError, match="unknown request state"):
        await store.set_state("r7f3a", "exploded")
    assert await store.request("nope") is None


async def test_plans_keep_the_exact_definitions(store: Store) -> None:
    await store.add_request(
        "r1", source="console", actor="me", place="console", text="schedule a-1"
    )
    definitions = [
        {"created": "2026-11-28T12:00:00.000Z", "payload": {"env": {"N": n}}, "tags": {"ü": "✓"}}
        for n in range(3)
    ]
    tasks = [
        PlannedTask(f"task{n}", f"label-{n}", 0, n, d, requested=n > 0)
        for n, d in enumerate(definitions)
    ]
    await store.save_plan("r1", tasks)
    await store.mark_submitted("task1", ok=True)
    await store.mark_submitted("task2", ok=False, error="409 RequestConflict")
    assert await store.set_task_state("task1", "running")
    assert not await store.set_task_state("task1", "running")
    assert await store.set_task_state("task1", "completed")
    stored = await store.plan("r1")
    assert [t.definition for t in stored] == definitions
    assert [t.requested for t in stored] == [False, True, True]
    assert [(t.submitted, t.error, t.state) for t in stored] == [
        (False, None, None),
        (True, None, "completed"),
        (False, "409 RequestConflict", None),
    ]


async def test_replies_are_upserted_and_the_audit_log_kept(store: Store) -> None:
    await store.add_request("r1", source="github", actor="octocat", place="o/r#1", text="x")
    await store.save_reply("r1", "github", "o/r#1", "queued", "comment-1")
    await store.save_reply("r1", "github", "o/r#1", "3/3 done", None)
    reply = await store.reply("r1", "github", "o/r#1")
    assert reply is not None
    assert (reply["body"], reply["reference"]) == ("3/3 done", "comment-1")
    await store.audit(
        actor="octocat",
        source="github",
        place="o/r#1",
        action="schedule",
        detail={"created": 3},
        request_id="r1",
    )
    await store.audit(
        actor="mallory",
        source="github",
        place="o/r#1",
        action="denied",
        detail={"why": "read access"},
    )
    log = await store.audit_log()
    assert [(e["actor"], e["action"], e["detail"]) for e in log] == [
        ("mallory", "denied", {"why": "read access"}),
        ("octocat", "schedule", {"created": 3}),
    ]


def test_placeholders_are_numbered_for_postgres() -> None:
    assert numbered("SELECT ? , ? FROM t WHERE a = ?") == "SELECT $1 , $2 FROM t WHERE a = $3"


async def test_the_first_approval_of_a_head_is_kept(store: Store) -> None:
    head = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    assert await store.approver("github", "octo/repo#7", head) is None
    assert await store.approve("github", "octo/repo#7", head, "maintainer")
    assert not await store.approve("github", "octo/repo#7", head, "someone-else")
    assert await store.approver("github", "octo/repo#7", head) == "maintainer"
    # an approval is for one head of one pull request
    assert await store.approver("github", "octo/repo#8", head) is None
    assert await store.approver("github", "octo/repo#7", "f" * 40) is None


async def test_replicas_never_claim_the_same_delivery(store: Store) -> None:
    for n in range(30):
        assert await store.keep_delivery("github", f"d{n:02d}", "issue_comment", "{}")
    first, second = await asyncio.gather(
        store.claim_deliveries("github", "replica-a", limit=20),
        store.claim_deliveries("github", "replica-b", limit=20),
    )
    a = {row["delivery_id"] for row in first}
    b = {row["delivery_id"] for row in second}
    assert not a & b
    assert len(a | b) == 30
    assert await store.claim_deliveries("github", "replica-c") == []  # all held
    await store.processed("github", "d00")
    # a dead replica's claims run out and are taken over; processed ones never come back
    expired = await store.claim_deliveries("github", "replica-c", lease=-1)
    assert expired == []  # the holds of a and b are still valid
    async with store.transaction() as db:
        await db.execute(
            "UPDATE inbox SET claimed_until = ? WHERE claimed_by = ?", "2000", "replica-a"
        )
    taken = {row["delivery_id"] for row in await store.claim_deliveries("github", "replica-c")}
    assert taken == a - {"d00"}


async def test_one_replica_follows_a_request_until_its_hold_runs_out(store: Store) -> None:
    await store.add_request("r7f3a", source="github", actor="a", place="o/r#1", text="x")
    assert await store.claim_request("r7f3a", "replica-a")
    assert await store.claim_request("r7f3a", "replica-a")  # renewing its own hold
    assert not await store.claim_request("r7f3a", "replica-b")
    assert await store.claim_request("r7f3a", "replica-a", lease=-1)  # let it lapse
    assert await store.claim_request("r7f3a", "replica-b")
    record = await store.request("r7f3a")
    assert record is not None
    assert record.tracker == "replica-b"


async def test_revisions_are_found_by_their_beginning_within_a_project(store: Store) -> None:
    revisions = ["abc1234" + "0" * 33, "abc1234" + "9" * 33, "abc1235" + "0" * 33, "f" * 40]
    for n, revision in enumerate(revisions):
        await store.add_request(
            f"r{n}",
            source="console",
            actor="a",
            place="p",
            text="t",
            project="autoland",
            revision=revision,
        )
    await store.add_request(
        "r9",
        source="console",
        actor="a",
        place="p",
        text="t",
        project="try",
        revision="abc1234" + "1" * 33,
    )
    assert await store.revisions_starting("autoland", "abc1234") == revisions[:2]
    assert await store.revisions_starting("autoland", "abc123") == revisions[:3]
    assert await store.revisions_starting("autoland", "abc123", limit=1) == revisions[:1]
    assert await store.revisions_starting("autoland", "fff") == [revisions[3]]
    assert await store.revisions_starting("autoland", "0") == []


async def test_replicas_starting_together_migrate_a_fresh_database_once() -> None:
    """Two (here four) replicas started at once on an empty schema: one applies the
    migrations, the others wait for it and find them applied; none fails to start."""
    async with empty_schema() as (admin, schema):
        stores = [
            await PostgresStore.connect(POSTGRES_URL, server_settings={"search_path": schema})
            for _ in range(4)
        ]
        try:
            versions = await asyncio.gather(*(store.migrate() for store in stores))
            assert versions == [len(MIGRATIONS)] * 4
            applied = await admin.fetchval(f"SELECT count(*) FROM {schema}.schema_migrations")
            assert applied == len(MIGRATIONS)
        finally:
            for store in stores:
                await store.close()


async def test_old_deliveries_are_pruned_and_the_audit_log_kept(store: Store) -> None:
    await store.keep_delivery("github", "old", "issue_comment", "{}")
    await store.keep_delivery("github", "pending", "issue_comment", "{}")
    await store.first_delivery("github", "old")
    await store.processed("github", "old")
    await store.audit(actor="a", source="github", place="o/r#1", action="plan", detail={})
    assert await store.prune(30) == 0  # nothing is 30 days old yet
    gone = await store.prune(-1)  # as if a day had passed beyond the keeping time
    assert gone == 2  # the processed delivery, and the mark of the delivery seen
    assert [r["delivery_id"] for r in await store.unprocessed("github")] == ["pending"]
    assert await store.first_delivery("github", "old")  # forgotten: would be taken again
    assert len(await store.audit_log()) == 1


async def test_sqlite_waits_for_another_processs_write_without_holding_up_the_event_loop(
    tmp_path: Path,
) -> None:
    """The front process keeps deliveries in the bot's SQLite file: while one of them
    writes, the other's transaction waits for it, and its event loop goes on meanwhile."""
    import sqlite3

    path = tmp_path / "shared.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write, held for 0.3 s
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(tick())
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")
    began = loop.time()
    (kept,) = await store.keep_deliveries("github", [("d-1", "ping", "{}", "2026-12-01")])
    waited = loop.time() - began
    ticking.cancel()
    assert kept
    assert 0.29 <= waited < 2.0
    assert ticks >= 15  # the loop ran all along (SQLite's own wait would have blocked it)
    other.close()
    await store.close()


async def test_sqlite_gives_up_on_a_write_held_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from bot.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_SECONDS", 0.2)
    path = tmp_path / "shared.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await store.keep_deliveries("github", [("d-1", "ping", "{}", "2026-12-01")])
    other.execute("ROLLBACK")
    (kept,) = await store.keep_deliveries("github", [("d-1", "ping", "{}", "2026-12-01")])
    assert kept
    other.close()
    await store.close()


async def test_a_store_that_leaves_checkpoints_never_runs_one_at_a_commit(
    tmp_path: Path,
) -> None:
    """The front process's connection: its commits only append to the log; the bot's own
    connection copies the log into the file."""
    path = tmp_path / "shared.sqlite3"
    bot_store = SqliteStore(path)
    await bot_store.migrate()
    front = SqliteStore(path)
    front.leave_checkpoints()
    payload = "x" * 64_000  # 16 pages: 100 of them pass SQLite's 1,000-page checkpoint
    for n in range(100):
        await front.keep_deliveries("github", [(f"d-{n}", "e", payload, "2026-12-01")])
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 6_000_000  # all 1,600 pages still in the log
    assert path.stat().st_size < 1_000_000  # none copied into the file
    await bot_store.keep_deliveries("github", [("d-bot", "e", "{}", "2026-12-01")])
    assert path.stat().st_size > 6_000_000  # the bot's commit checkpointed them
    await front.close()
    await bot_store.close()
