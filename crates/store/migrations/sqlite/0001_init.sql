-- Watchhouse embedded schema, version 1.

CREATE TABLE forces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    region      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE members (
    id            INTEGER PRIMARY KEY,
    force_id      INTEGER NOT NULL REFERENCES forces(id),
    name          TEXT NOT NULL,
    networks      TEXT NOT NULL DEFAULT '[]',   -- JSON array of CIDRs
    send_outbound INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX members_force ON members(force_id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,                -- argon2id PHC string
    role          TEXT NOT NULL,
    force_id      INTEGER REFERENCES forces(id),
    region        TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE user_members (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members(id),
    PRIMARY KEY (user_id, member_id)
) WITHOUT ROWID;

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,                -- SHA-256 of the cookie value
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE enrolment_tokens (
    token_hash   TEXT PRIMARY KEY,              -- SHA-256 of the one-time token
    member_id    INTEGER NOT NULL REFERENCES members(id),
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    used_ms      INTEGER,
    collector_id INTEGER
) WITHOUT ROWID;

CREATE TABLE collectors (
    id              INTEGER PRIMARY KEY,
    member_id       INTEGER NOT NULL REFERENCES members(id),
    name            TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,       -- SHA-256 of the bearer credential
    created_ms      INTEGER NOT NULL,
    revoked_ms      INTEGER,
    last_seen_ms    INTEGER,
    version         TEXT,
    stats           TEXT                        -- JSON CollectorStats, latest
);
CREATE INDEX collectors_member ON collectors(member_id);

CREATE TABLE ingest_batches (
    collector_id INTEGER NOT NULL REFERENCES collectors(id),
    batch_id     TEXT NOT NULL,
    accepted     INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    PRIMARY KEY (collector_id, batch_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    member_id    INTEGER NOT NULL,
    collector_id INTEGER NOT NULL,
    time_ms      INTEGER NOT NULL,
    last_ms      INTEGER NOT NULL,
    action       TEXT NOT NULL,
    protocol     INTEGER NOT NULL,
    src_ip       TEXT NOT NULL,
    src_port     INTEGER,
    dst_ip       TEXT NOT NULL,
    dst_port     INTEGER,
    direction    TEXT NOT NULL,
    in_iface     TEXT,
    out_iface    TEXT,
    rule         TEXT,
    device       TEXT,
    format       TEXT NOT NULL,
    bytes        INTEGER,
    packets      INTEGER,
    count        INTEGER NOT NULL,
    raw          TEXT NOT NULL
);
CREATE INDEX events_member_time ON events(member_id, time_ms);

-- Rollups maintained at ingest, so reports never scan raw events.
CREATE TABLE rollup_daily (
    member_id INTEGER NOT NULL,
    day       INTEGER NOT NULL,                 -- days since 1970-01-01 UTC
    allowed   INTEGER NOT NULL,                 -- 1 allowed, 0 blocked
    events    INTEGER NOT NULL,
    PRIMARY KEY (member_id, day, allowed)
) WITHOUT ROWID;

CREATE TABLE rollup_src (
    member_id INTEGER NOT NULL,
    day       INTEGER NOT NULL,
    src_ip    TEXT NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (member_id, day, src_ip)
) WITHOUT ROWID;

CREATE TABLE rollup_port (
    member_id INTEGER NOT NULL,
    day       INTEGER NOT NULL,
    protocol  INTEGER NOT NULL,
    dst_port  INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (member_id, day, protocol, dst_port)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    subject_ip    TEXT NOT NULL,
    lists         TEXT NOT NULL,                -- JSON array
    ports         TEXT NOT NULL,                -- JSON array
    event_count   INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    status        TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX alerts_member ON alerts(member_id, last_seen_ms);
CREATE INDEX alerts_dedup ON alerts(member_id, dedup_key, last_seen_ms);

CREATE TABLE alert_events (
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    event_id INTEGER NOT NULL,
    PRIMARY KEY (alert_id, event_id)
) WITHOUT ROWID;
