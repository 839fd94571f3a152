"""The durable store's operations, written once over a small dialect-neutral SQL interface."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.store.schema import MIGRATIONS, SERIAL
from bot.tctime import format_time


class RequestState(StrEnum):
    """A request's life: recorded, planned, (held for confirmation,) submitting, submitted,
    finished; or failed or cancelled. ``submitting`` survives a crash and is resumed."""

    RECEIVED = "received"
    PLANNED = "planned"
    PREVIEWED = "previewed"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    SUBMITTING = "submitting"
    TRIGGERING = "triggering"  # an in-tree action's hook is being triggered (never resumed)
    # The action task was triggered; the bot waits for it to create the jobs (resumed).
    ACTION_RUNNING = "action_running"
    SEARCHING = "searching"  # a culprit search runs its rounds (resumed)
    SUBMITTED = "submitted"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"  # the Queue no longer knows its tasks: followed no more

    @property
    def words(self) -> str:
        """The state as a reply says it: ``awaiting confirmation``."""
        return self.value.replace("_", " ")


STATES = tuple(state.value for state in RequestState)


def _answered(source: str) -> str:
    return f"{source}:answered"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def now_text(later: float = 0.0) -> str:
    """Now (plus ``later`` seconds) as the store writes times: sortable text."""
    return format_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=later))


# How long a replica's claim on a delivery or a request lasts unless renewed.
LEASE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as stored."""

    id: str
    source: str
    actor: str
    place: str
    text: str
    command: str | None
    project: str | None
    revision: str | None
    decision_task_id: str | None
    state: RequestState
    error: str | None
    created_at: str
    updated_at: str
    tracker: str | None = None  # the replica following it, until tracked_until
    tracked_until: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RequestState(self.state))


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task of a request's plan, with the exact definition to (re)submit."""

    task_id: str
    label: str
    copy: int
    position: int
    definition: dict[str, Any]
    submitted: bool = False
    error: str | None = None
    state: str | None = None
    requested: bool = False  # asked for, rather than a dependency of what was


class Connection(Protocol):
    """What a backend gives the store: statements with ``?`` placeholders."""

    async def execute(self, sql: str, *args: Any) -> int: ...

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...


# The advisory lock a PostgreSQL migration holds ("tbot" in ASCII).
MIGRATION_LOCK = 0x74626F74


async def _insert_plan(
    db: Connection, request_id: str, tasks: Sequence[PlannedTask], *, submitted: bool
) -> None:
    for task in tasks:
        await db.execute(
            "INSERT INTO plan_tasks (task_id, request_id, label, copy, position,"
            " definition, submitted, requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            task.task_id,
            request_id,
            task.label,
            task.copy,
            task.position,
            json.dumps(task.definition, sort_keys=True),
            1 if submitted else 0,
            1 if task.requested else 0,
        )


class Store:
    """Requests, their plans and task states, replies, seen deliveries, and an audit log."""

    dialect = "sqlite"

    # --- provided by a backend ------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # --- schema --------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply the migrations not yet applied; the schema version afterwards.

        One transaction under a lock: replicas starting together on a fresh database take
        turns, and those after the first find the migrations applied.
        """
        async with self.transaction() as db:
            if self.dialect == "postgresql":  # SQLite's BEGIN IMMEDIATE serializes already
                await db.execute("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK)
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            rows = await db.fetch("SELECT MAX(version) AS version FROM schema_migrations")
            current = int(rows[0]["version"] or 0)
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    await db.execute(statement.format(serial=SERIAL[self.dialect]))
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    version,
                    now_text(),
                )
                current = version
        return current

    # --- deliveries ----------------------------------------------------------------------

    async def first_delivery(self, source: str, delivery_id: str) -> bool:
        """Record a delivery (a webhook's id, a chat message's id); False if seen before.

        One statement, so two replicas receiving the same delivery cannot both win.
        """
        async with self.transaction() as db:
            inserted = await db.execute(
                "INSERT INTO deliveries (source, delivery_id, received_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                source,
                delivery_id,
                now_text(),
            )
        return inserted == 1

    async def bind_key(self, caller: str, key: str, digest: str) -> bool:
        """Tie an idempotency key to its caller and the body it came with; False when the
        caller used it before with another body."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO idempotency (caller, key, digest, used_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                caller,
                key,
                digest,
                now_text(),
            )
            rows = await db.fetch(
                "SELECT digest FROM idempotency WHERE caller = ? AND key = ?", caller, key
            )
        return bool(rows) and rows[0]["digest"] == digest

    async def answered(self, source: str, key: str) -> bool:
        """Whether the command with this key (``command_keys``) was answered already."""
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT 1 AS one FROM deliveries WHERE source = ? AND delivery_id = ?",
                _answered(source),
                _digest(key),
            )
        return bool(rows)

    async def mark_answered(self, source: str, key: str) -> None:
        """Record that the command with this key was answered: not run again."""
        await self.first_delivery(_answered(source), _digest(key))

    # --- inbox ---------------------------------------------------------------------------

    async def keep_delivery(self, source: str, delivery_id: str, event: str, payload: str) -> bool:
        """Keep a delivery to process later; False if it was kept before (a redelivery)."""
        (kept,) = await self.keep_deliveries(source, [(delivery_id, event, payload, now_text())])
        return kept

    async def keep_deliveries(
        self, source: str, deliveries: list[tuple[str, str, str, str]]
    ) -> list[bool]:
        """Keep several deliveries (id, event, payload, when received: sortable text, in
        the order they came) in one transaction; for each, False if it was kept before (a
        redelivery, or twice in ``deliveries``)."""
        kept = []
        async with self.transaction() as db:
            for delivery_id, event, payload, received in deliveries:
                inserted = await db.execute(
                    "INSERT INTO inbox (source, delivery_id, event, payload, received_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    source,
                    delivery_id,
                    event,
                    payload,
                    received,
                )
                kept.append(inserted == 1)
        return kept

    async def unprocessed(self, source: str, limit: int = 100) -> list[dict[str, Any]]:
        async with self.transaction() as db:
            return await db.fetch(
                "SELECT * FROM inbox WHERE source = ? AND processed_at IS NULL"
                " AND parked_at IS NULL ORDER BY received_at, delivery_id LIMIT ?",
                source,
                limit,
            )

    async def claim_deliveries(
        self,
        source: str,
        owner: str,
        *,
        lease: float = LEASE_SECONDS,
        limit: int = 100,
        in_hand: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """Unprocessed deliveries no other replica holds (or whose holder's lease ran out),
        now held by ``owner``; oldest first. Two replicas never get the same one. Those
        ``owner`` held already are among them (a replica restarted under its own name takes
        its deliveries back at once), but for those ``in_hand``: the ones it is working on."""
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        skip = ""
        if in_hand:
            skip = f" AND delivery_id NOT IN ({', '.join('?' for _ in in_hand)})"
        async with self.transaction() as db:
            rows = await db.fetch(
                "UPDATE inbox SET claimed_by = ?, claimed_until = ?"
                " WHERE (source, delivery_id) IN (SELECT source, delivery_id FROM inbox"
                " WHERE source = ? AND processed_at IS NULL AND parked_at IS NULL"
                f" AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?){skip}"
                f" ORDER BY received_at, delivery_id LIMIT ?{lock})"
                " RETURNING *",
                owner,
                now_text(lease),
                source,
                now_text(),
                owner,
                *in_hand,
                limit,
            )
        return sorted(rows, key=lambda row: (row["received_at"], row["delivery_id"]))

    async def renew_delivery(
        self, source: str, delivery_id: str, owner: str, *, lease: float = LEASE_SECONDS
    ) -> bool:
        """Keep holding a delivery that is taking long to process; False when this owner
        no longer holds it."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE inbox SET claimed_until = ?"
                " WHERE source = ? AND delivery_id = ? AND claimed_by = ?",
                now_text(lease),
                source,
                delivery_id,
                owner,
            )
        return changed == 1

    async def delivery_failed(
        self, source: str, delivery_id: str, owner: str, error: str, *, retry_in: float
    ) -> int:
        """Record a failed attempt at a delivery this owner holds, and hold it until it is
        to be tried again; how many attempts it has had."""
        async with self.transaction() as db:
            rows = await db.fetch(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ?, claimed_until = ?,"
                " claimed_by = NULL"
                " WHERE source = ? AND delivery_id = ? AND claimed_by = ? RETURNING attempts",
                error[:2000],
                now_text(retry_in),
                source,
                delivery_id,
                owner,
            )
        return int(rows[0]["attempts"]) if rows else 0

    async def park_delivery(self, source: str, delivery_id: str) -> None:
        """Stop trying a delivery: it waits for an operator (``retry_delivery``, or
        ``drop_delivery``)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE inbox SET parked_at = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE source = ? AND delivery_id = ?",
                now_text(),
                source,
                delivery_id,
            )

    async def parked_deliveries(self, source: str | None = None) -> list[dict[str, Any]]:
        """Parked deliveries (without their payloads), oldest first."""
        where = "parked_at IS NOT NULL AND processed_at IS NULL"
        args: list[Any] = []
        if source is not None:
            where += " AND source = ?"
            args.append(source)
        async with self.transaction() as db:
            return await db.fetch(
                "SELECT source, delivery_id, event, received_at, attempts, last_error, parked_at"
                f" FROM inbox WHERE {where} ORDER BY parked_at, source, delivery_id",
                *args,
            )

    async def retry_delivery(self, source: str, delivery_id: str) -> bool:
        """Put a parked delivery back in line, its attempts counted afresh; False if there
        is no such parked delivery."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE inbox SET parked_at = NULL, attempts = 0, claimed_by = NULL,"
                " claimed_until = NULL WHERE source = ? AND delivery_id = ?"
                " AND parked_at IS NOT NULL AND processed_at IS NULL",
                source,
                delivery_id,
            )
        return changed == 1

    async def drop_delivery(self, source: str, delivery_id: str) -> bool:
        """Give up on a parked delivery for good (it stays known, so a redelivery of it is
        not taken again); False if there is no such parked delivery."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE inbox SET processed_at = ? WHERE source = ? AND delivery_id = ?"
                " AND parked_at IS NOT NULL AND processed_at IS NULL",
                now_text(),
                source,
                delivery_id,
            )
        return changed == 1

    async def prune(self, keep_days: float) -> int:
        """Forget deliveries processed (or dropped) more than ``keep_days`` ago, and the
        marks of what was seen then; the audit log is kept. How many rows went."""
        cutoff = now_text(-keep_days * 86400)
        async with self.transaction() as db:
            gone = await db.execute(
                "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?", cutoff
            )
            gone += await db.execute("DELETE FROM deliveries WHERE received_at < ?", cutoff)
            gone += await db.execute("DELETE FROM idempotency WHERE used_at < ?", cutoff)
        return gone

    async def processed(self, source: str, delivery_id: str) -> None:
        await self.processed_all(source, [delivery_id])

    async def processed_all(self, source: str, delivery_ids: list[str]) -> list[None]:
        """Mark several deliveries processed in one transaction (one None for each)."""
        moment = now_text()
        async with self.transaction() as db:
            for delivery_id in delivery_ids:
                await db.execute(
                    "UPDATE inbox SET processed_at = ? WHERE source = ? AND delivery_id = ?",
                    moment,
                    source,
                    delivery_id,
                )
        return [None] * len(delivery_ids)

    # --- adapters' own state ----------------------------------------------------------------

    async def adapter_value(self, source: str, key: str) -> str | None:
        """What an adapter kept under ``key`` (``set_adapter_value``), or None."""
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT value FROM adapter_state WHERE source = ? AND key = ?", source, key
            )
        return str(rows[0]["value"]) if rows else None

    async def adapter_values(self, source: str, prefix: str) -> dict[str, str]:
        """Every value an adapter kept under a key starting with ``prefix``."""
        async with self.transaction() as db:
            rows = await db.fetch("SELECT key, value FROM adapter_state WHERE source = ?", source)
        return {str(r["key"]): str(r["value"]) for r in rows if str(r["key"]).startswith(prefix)}

    async def set_adapter_value(self, source: str, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key`` for the adapter ``source`` (None forgets it)."""
        async with self.transaction() as db:
            if value is None:
                await db.execute(
                    "DELETE FROM adapter_state WHERE source = ? AND key = ?", source, key
                )
                return
            await db.execute(
                "INSERT INTO adapter_state (source, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                source,
                key,
                value,
                now_text(),
            )

    # --- approvals -----------------------------------------------------------------------

    async def approve(self, source: str, place: str, revision: str, approver: str) -> bool:
        """Record that ``approver`` let ``revision`` be scheduled at ``place``; False if
        it was approved before (the first approver is kept)."""
        async with self.transaction() as db:
            inserted = await db.execute(
                "INSERT INTO approvals (source, place, revision, approver, approved_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                source,
                place,
                revision,
                approver,
                now_text(),
            )
        return inserted == 1

    async def approver(self, source: str, place: str, revision: str) -> str | None:
        """Who approved ``revision`` at ``place``, if anyone did."""
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT approver FROM approvals WHERE source = ? AND place = ? AND revision = ?",
                source,
                place,
                revision,
            )
        return str(rows[0]["approver"]) if rows else None

    # --- requests ------------------------------------------------------------------------

    async def add_request(
        self,
        request_id: str,
        *,
        source: str,
        actor: str,
        place: str,
        text: str,
        command: str | None = None,
        project: str | None = None,
        revision: str | None = None,
        decision_task_id: str | None = None,
    ) -> RequestRecord:
        """Record a new request; an existing one of that id (made at the same moment by
        another attempt at the same command) is left as it is and returned."""
        stamp = now_text()
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO requests (id, source, actor, place, text, command, project, revision,"
                " decision_task_id, state, error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', NULL, ?, ?)"
                " ON CONFLICT DO NOTHING",
                request_id,
                source,
                actor,
                place,
                text,
                command,
                project,
                revision,
                decision_task_id,
                stamp,
                stamp,
            )
        record = await self.request(request_id)
        assert record is not None
        return record

    async def request(self, request_id: str) -> RequestRecord | None:
        async with self.transaction() as db:
            rows = await db.fetch("SELECT * FROM requests WHERE id = ?", request_id)
        return RequestRecord(**rows[0]) if rows else None

    async def set_state(
        self,
        request_id: str,
        state: RequestState,
        *,
        error: str | None = None,
        decision_task_id: str | None = None,
        revision: str | None = None,
    ) -> None:
        if state not in STATES:
            raise ValueError(f"unknown request state {state!r}")
        async with self.transaction() as db:
            await db.execute(
                "UPDATE requests SET state = ?, error = COALESCE(?, error),"
                " decision_task_id = COALESCE(?, decision_task_id),"
                " revision = COALESCE(?, revision),"
                " updated_at = ? WHERE id = ?",
                state,
                error,
                decision_task_id,
                revision,
                now_text(),
                request_id,
            )

    async def move_state(
        self, request_id: str, expected: RequestState, state: RequestState
    ) -> bool:
        """Set ``state`` only if the request is still in ``expected`` (another replica or
        command may have moved it meanwhile, e.g. cancelled it); whether it was set."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                state,
                now_text(),
                request_id,
                expected,
            )
        return changed == 1

    async def claim_request(
        self, request_id: str, owner: str, *, lease: float = LEASE_SECONDS
    ) -> bool:
        """Hold (or keep holding) the right to follow ``request_id``; False when another
        replica holds it and its lease has not run out."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE requests SET tracker = ?, tracked_until = ? WHERE id = ?"
                " AND (tracker IS NULL OR tracker = ? OR tracked_until < ?)",
                owner,
                now_text(lease),
                request_id,
                owner,
                now_text(),
            )
        return changed == 1

    async def requests_in(self, *states: RequestState) -> list[RequestRecord]:
        marks = ", ".join("?" for _ in states)
        async with self.transaction() as db:
            rows = await db.fetch(
                f"SELECT * FROM requests WHERE state IN ({marks}) ORDER BY created_at, id", *states
            )
        return [RequestRecord(**row) for row in rows]

    async def recent_requests(
        self, *, actor: str | None = None, limit: int = 10
    ) -> list[RequestRecord]:
        async with self.transaction() as db:
            if actor is None:
                rows = await db.fetch(
                    "SELECT * FROM requests ORDER BY created_at DESC, id DESC LIMIT ?", limit
                )
            else:
                rows = await db.fetch(
                    "SELECT * FROM requests WHERE actor = ?"
                    " ORDER BY created_at DESC, id DESC LIMIT ?",
                    actor,
                    limit,
                )
        return [RequestRecord(**row) for row in rows]

    async def revisions_starting(self, project: str, prefix: str, limit: int = 10) -> list[str]:
        """Full revisions of ``project`` that requests were made on, beginning with ``prefix``
        (lower-case hex): a range scan, so the index serves it on either database."""
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT DISTINCT revision FROM requests WHERE project = ?"
                " AND revision >= ? AND revision < ? ORDER BY revision LIMIT ?",
                project,
                prefix,
                prefix + "g",  # every hex digit sorts before "g"
                limit,
            )
        return [str(row["revision"]) for row in rows]

    # --- plans ---------------------------------------------------------------------------

    async def save_search(self, request_id: str, state: str) -> None:
        """Keep a culprit search's state (JSON), replacing what was kept."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO searches (request_id, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (request_id) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at",
                request_id,
                state,
                now_text(),
            )

    async def search(self, request_id: str) -> str | None:
        """A culprit search's state as kept, or None."""
        async with self.transaction() as db:
            rows = await db.fetch("SELECT state FROM searches WHERE request_id = ?", request_id)
        return str(rows[0]["state"]) if rows else None

    async def save_plan(self, request_id: str, tasks: Sequence[PlannedTask]) -> None:
        """Store every task to create, exactly as it will be submitted (for resubmission)."""
        async with self.transaction() as db:
            await _insert_plan(db, request_id, tasks, submitted=False)

    async def replace_plan(
        self,
        request_id: str,
        tasks: Sequence[PlannedTask],
        *,
        state: RequestState | None = None,
        error: str | None = None,
    ) -> None:
        """The request's tasks are these now (an action task created them), submitted; and,
        in the same transaction, its ``state`` (with ``error``) when given."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM plan_tasks WHERE request_id = ?", request_id)
            await _insert_plan(db, request_id, tasks, submitted=True)
            if state is not None:
                await db.execute(
                    "UPDATE requests SET state = ?, error = COALESCE(?, error), updated_at = ?"
                    " WHERE id = ?",
                    RequestState(state).value,
                    error,
                    now_text(),
                    request_id,
                )

    async def plan(self, request_id: str) -> list[PlannedTask]:
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT * FROM plan_tasks WHERE request_id = ? ORDER BY position", request_id
            )
        return [
            PlannedTask(
                row["task_id"],
                row["label"],
                row["copy"],
                row["position"],
                json.loads(row["definition"]),
                bool(row["submitted"]),
                row["error"],
                row["state"],
                bool(row["requested"]),
            )
            for row in rows
        ]

    async def request_of_task(self, task_id: str) -> str | None:
        """The request that planned ``task_id``, if the bot planned it."""
        async with self.transaction() as db:
            rows = await db.fetch("SELECT request_id FROM plan_tasks WHERE task_id = ?", task_id)
        return str(rows[0]["request_id"]) if rows else None

    async def mark_submitted(self, task_id: str, *, ok: bool, error: str | None = None) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE plan_tasks SET submitted = ?, error = ? WHERE task_id = ?",
                1 if ok else 0,
                error,
                task_id,
            )

    async def set_task_state(self, task_id: str, state: str) -> bool:
        """Record a task's state; True if it changed."""
        async with self.transaction() as db:
            changed = await db.execute(
                "UPDATE plan_tasks SET state = ?"
                " WHERE task_id = ? AND (state IS NULL OR state <> ?)",
                state,
                task_id,
                state,
            )
        return changed > 0

    # --- replies and audit -----------------------------------------------------------------

    async def save_reply(
        self, request_id: str, adapter: str, place: str, body: str, reference: str | None
    ) -> None:
        """Where a request's status card lives, and what it says now (upserted)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO replies (request_id, adapter, place, reference, body, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (request_id, adapter, place) DO UPDATE SET body = excluded.body,"
                " reference = COALESCE(excluded.reference, replies.reference),"
                " updated_at = excluded.updated_at",
                request_id,
                adapter,
                place,
                reference,
                body,
                now_text(),
            )

    async def reply(self, request_id: str, adapter: str, place: str) -> dict[str, Any] | None:
        async with self.transaction() as db:
            rows = await db.fetch(
                "SELECT * FROM replies WHERE request_id = ? AND adapter = ? AND place = ?",
                request_id,
                adapter,
                place,
            )
        return rows[0] if rows else None

    async def audit(
        self,
        *,
        actor: str,
        source: str,
        place: str,
        action: str,
        detail: dict[str, Any],
        request_id: str | None = None,
    ) -> None:
        """Who asked what, from where, and what came of it; never credentials."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO audit (at, actor, source, place, action, request_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                now_text(),
                actor,
                source,
                place,
                action,
                request_id,
                json.dumps(detail, sort_keys=True),
            )

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self.transaction() as db:
            rows = await db.fetch("SELECT * FROM audit ORDER BY id DESC LIMIT ?", limit)
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]
