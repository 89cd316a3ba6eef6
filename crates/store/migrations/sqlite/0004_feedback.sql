-- Version 4: member feedback on alerts, and the suppressions it creates.
ALTER TABLE alerts ADD COLUMN feedback TEXT;            -- expected, false_positive, confirmed
ALTER TABLE alerts ADD COLUMN feedback_note TEXT;
ALTER TABLE alerts ADD COLUMN feedback_by TEXT;
ALTER TABLE alerts ADD COLUMN feedback_ms INTEGER;
CREATE INDEX alerts_feedback ON alerts(feedback, subject_ip) WHERE feedback IS NOT NULL;

-- Repeats of (kind, subject) for a member are not alerted until `until_ms` (events are still
-- stored; only the alert is held back).
CREATE TABLE suppressions (
    member_id  INTEGER NOT NULL REFERENCES members(id),
    kind       TEXT NOT NULL,
    subject_ip TEXT NOT NULL,
    until_ms   INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (member_id, kind, subject_ip)
) WITHOUT ROWID;
