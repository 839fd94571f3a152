"""The store's schema, as numbered migrations written once for SQLite and PostgreSQL."""

from __future__ import annotations

# Each migration is a list of statements; ``{serial}`` becomes the dialect's auto-increment
# key type. A migration runs once, in a transaction, and is recorded in schema_migrations.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE deliveries (
            source TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (source, delivery_id)
        )""",
        """CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            actor TEXT NOT NULL,
            place TEXT NOT NULL,
            text TEXT NOT NULL,
            command TEXT,
            project TEXT,
            revision TEXT,
            decision_task_id TEXT,
            state TEXT NOT NULL,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX requests_state ON requests (state)",
        """CREATE TABLE plan_tasks (
            task_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL REFERENCES requests (id),
            label TEXT NOT NULL,
            copy INTEGER NOT NULL,
            position INTEGER NOT NULL,
            definition TEXT NOT NULL,
            submitted INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            state TEXT
        )""",
        "CREATE INDEX plan_tasks_request ON plan_tasks (request_id, position)",
        """CREATE TABLE replies (
            request_id TEXT NOT NULL REFERENCES requests (id),
            adapter TEXT NOT NULL,
            place TEXT NOT NULL,
            reference TEXT,
            body TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (request_id, adapter, place)
        )""",
        """CREATE TABLE audit (
            id {serial} PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            source TEXT NOT NULL,
            place TEXT NOT NULL,
            action TEXT NOT NULL,
            request_id TEXT,
            detail TEXT NOT NULL
        )""",
    ),
    (
        # Deliveries kept before they are acknowledged, processed afterwards: a crash
        # between the two loses nothing.
        """CREATE TABLE inbox (
            source TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            received_at TEXT NOT NULL,
            processed_at TEXT,
            PRIMARY KEY (source, delivery_id)
        )""",
        "CREATE INDEX inbox_pending ON inbox (processed_at)",
    ),
    (
        # Which planned tasks were asked for (the rest are their dependencies).
        "ALTER TABLE plan_tasks ADD COLUMN requested INTEGER NOT NULL DEFAULT 0",
        # Heads of pull requests from forks that a maintainer let be scheduled.
        """CREATE TABLE approvals (
            source TEXT NOT NULL,
            place TEXT NOT NULL,
            revision TEXT NOT NULL,
            approver TEXT NOT NULL,
            approved_at TEXT NOT NULL,
            PRIMARY KEY (source, place, revision)
        )""",
    ),
    (
        # Several replicas share one database: a delivery is processed, and a request
        # followed, by whichever replica holds its lease; a dead replica's leases expire.
        "ALTER TABLE inbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE inbox ADD COLUMN claimed_until TEXT",
        "ALTER TABLE requests ADD COLUMN tracker TEXT",
        "ALTER TABLE requests ADD COLUMN tracked_until TEXT",
    ),
    (
        # Short revisions are expanded against the pushes the bot has worked on.
        "CREATE INDEX requests_push ON requests (project, revision)",
    ),
    (
        # A delivery that failed is tried again later, a bounded number of times, then
        # parked for an operator to retry or drop.
        "ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE inbox ADD COLUMN last_error TEXT",
        "ALTER TABLE inbox ADD COLUMN parked_at TEXT",
    ),
    (
        # An API caller's Idempotency-Key and the body it was first sent with.
        """CREATE TABLE idempotency (
            caller TEXT NOT NULL,
            key TEXT NOT NULL,
            digest TEXT NOT NULL,
            used_at TEXT NOT NULL,
            PRIMARY KEY (caller, key)
        )""",
    ),
    (
        # Where an adapter stands with its platform across restarts (a Matrix sync token,
        # the device it logged in as, the rooms it joined by invitation).
        """CREATE TABLE adapter_state (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, key)
        )""",
    ),
    (
        # A culprit search's state (pushes, what each one's runs said, its rounds), kept
        # after every step so a restart carries on where it was.
        """CREATE TABLE searches (
            request_id TEXT PRIMARY KEY REFERENCES requests (id),
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ),
    (
        # The deliveries still to process, in the order they came: what the inbox worker
        # claims, found without reading the (long) history of processed ones.
        "CREATE INDEX inbox_waiting ON inbox (source, received_at, delivery_id)"
        " WHERE processed_at IS NULL AND parked_at IS NULL",
    ),
)

SERIAL = {"sqlite": "INTEGER", "postgresql": "BIGSERIAL"}
