-- Version 5: notifications.
-- Per-user preferences: urgent alerts by email at once; the rest in a daily digest.
ALTER TABLE users ADD COLUMN notify_urgent INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN notify_digest INTEGER NOT NULL DEFAULT 1;

-- HMAC-signed webhooks for a member's urgent alerts.
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY,
    member_id  INTEGER NOT NULL REFERENCES members(id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX webhooks_member ON webhooks(member_id);

-- Small durable settings of hub tasks (the notifier's cursor, the last digest day).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
