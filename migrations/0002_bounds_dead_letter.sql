-- Batches Foreman refused for good (400 and the like), kept with its message for inspection
-- rather than retried forever or silently deleted.
CREATE TABLE dead_letter (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_ms        INTEGER NOT NULL,
    idempotency_key TEXT    NOT NULL,
    samples         INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    message         TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL,
    body_gz         BLOB    NOT NULL
);

-- Running totals of the outbox, kept in the same transactions as its rows so status and
-- the bounds never need a full-table scan.
INSERT OR REPLACE INTO counters (name, value) SELECT 'outbox_batches', COUNT(*) FROM outbox;
INSERT OR REPLACE INTO counters (name, value) SELECT 'outbox_samples', COALESCE(SUM(samples), 0) FROM outbox;
INSERT OR REPLACE INTO counters (name, value) SELECT 'outbox_bytes', COALESCE(SUM(bytes), 0) FROM outbox;
