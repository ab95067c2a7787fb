-- Streamwire telemetry store, schema version 1.
-- Every row that concerns a person carries `user_id` (the room token's subject) so that
-- export and delete can find all of it. IP addresses are never stored: `net_prefix` holds
-- only the /24 (IPv4) or /48 (IPv6) network the connection came from.

-- One row per (room, session, peer): who sent telemetry, at which consent, from which network.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    room        TEXT    NOT NULL,
    session     TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    consent     TEXT    NOT NULL CHECK (consent IN ('necessary', 'full')),
    net_prefix  TEXT,
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    UNIQUE (room, session, peer, user_id)
);
CREATE INDEX sessions_user ON sessions (user_id);

-- One row per field value (long format: per-field retention and consent filtering are exact).
CREATE TABLE records (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ts_ms       INTEGER NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('device', 'peer')),
    track       TEXT    NOT NULL DEFAULT '',
    field       TEXT    NOT NULL,
    num         REAL,
    txt         TEXT,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX records_session_ts ON records (session_id, ts_ms);
CREATE INDEX records_expires ON records (expires_ms);

-- Optional end-user feedback, stored only when the user sends it.
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ts_ms       INTEGER NOT NULL,
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     TEXT
);

-- Non-identifying audit trail of data-subject requests and purges: action, time, row counts.
-- Deliberately no user id, no hash of one, no room or session.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    ts_ms       INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    rows        INTEGER NOT NULL
);
