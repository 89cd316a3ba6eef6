-- Version 3: intelligence in and out.
-- Why each list had an alert's address (feed, category, confidence, TLP), JSON array.
ALTER TABLE alerts ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
-- Partners' TLP ceiling (partner accounts only).
ALTER TABLE users ADD COLUMN max_tlp TEXT;

-- Indicators entered by analysts (UI or API). Revoked ones are kept for the record and for
-- TAXII consumers, who see the revocation.
CREATE TABLE indicators (
    id             INTEGER PRIMARY KEY,
    value          TEXT NOT NULL,
    kind           TEXT NOT NULL,                 -- ip, domain, url
    category       TEXT NOT NULL,
    confidence     INTEGER NOT NULL,
    tlp            TEXT NOT NULL,
    valid_until_ms INTEGER,
    description    TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    modified_ms    INTEGER NOT NULL,
    revoked        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX indicators_value ON indicators(value);

-- Entries a member keeps out of its own blocklist.
CREATE TABLE blocklist_exclusions (
    member_id  INTEGER NOT NULL REFERENCES members(id),
    cidr       TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (member_id, cidr)
) WITHOUT ROWID;

-- Bearer tokens for machine clients (TAXII partners). Only the SHA-256 is kept.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Objects partners added through TAXII, per collection and version.
CREATE TABLE taxii_objects (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    TEXT NOT NULL,
    added_ms   INTEGER NOT NULL,
    added_by   INTEGER NOT NULL REFERENCES users(id),
    json       TEXT NOT NULL,
    PRIMARY KEY (collection, id, version)
) WITHOUT ROWID;
CREATE INDEX taxii_objects_added ON taxii_objects(collection, added_ms);

-- TAXII status resources, readable by the user who added the objects.
CREATE TABLE taxii_status (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    json       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Feeds added in the web UI or API (those in the configuration file are not stored).
CREATE TABLE feed_configs (
    name       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,                     -- JSON, the hub's FeedConfig
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
