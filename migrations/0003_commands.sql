-- Commands from Foreman, recorded before they run: an id found here is never executed again
-- (C-21). Rows are kept at least 24 h after they finished (commands.retention).
CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    command      TEXT    NOT NULL,
    -- The args as received (JSON); holds miner credentials, so it is never logged or shown.
    args_json    TEXT    NOT NULL,
    -- received -> executing (written before anything is sent to a miner) -> done.
    state        TEXT    NOT NULL,
    -- The miner it acts on ("ip:port"), for the per-miner cooldown.
    miner        TEXT,
    received_ms  INTEGER NOT NULL,
    executing_ms INTEGER,
    -- What verification compares against (JSON: uptime and the like before the action).
    baseline     TEXT,
    done_ms      INTEGER,
    status       TEXT,
    message      TEXT
);
CREATE INDEX commands_state ON commands (state);
CREATE INDEX commands_miner ON commands (miner, command, executing_ms);

-- Start / update / done messages waiting for Foreman's 2xx, oldest first.
CREATE TABLE command_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
