-- Durable state of the agent. Metrics are kept as upload-ready batches (one row per Foreman
-- request, gzip JSON) rather than one row per sample: a day offline stays a few hundred MB.

-- Small key/value facts: the pickaxe id and the like.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Monotonic counters, updated in the same transaction as the rows they count.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- Metrics batches waiting for Foreman's 2xx. A row leaves only after that answer.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Poll cycle the batch belongs to (its timestamp in ms, UTC); the upload body carries it.
    cycle_ms        INTEGER NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    samples         INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    body_gz         BLOB    NOT NULL
);
CREATE INDEX outbox_cycle ON outbox (cycle_ms);

-- The miners Foreman assigned, kept so a restart during an outage still polls them.
CREATE TABLE assigned_miners (
    ip       TEXT    NOT NULL,
    port     INTEGER NOT NULL,
    api_type INTEGER,
    PRIMARY KEY (ip, port)
);

-- What the last polls said about each miner, for `pickaxe status`.
CREATE TABLE miner_status (
    ip            TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    family        TEXT,
    model         TEXT,
    mac           TEXT,
    hashrate      REAL,
    last_seen_ms  INTEGER,
    last_error    TEXT,
    last_error_ms INTEGER,
    PRIMARY KEY (ip, port)
);
