-- Version 8: raw events as compressed blocks (crates/store/src/block.rs), as on PostgreSQL: one
-- row per batch and day instead of a row per event. A block's events have consecutive ids,
-- first_id..last_id, and no other block's id lies in that range, so an event is found by the
-- block with the largest first_id at or below its id (a seek on the row id). The rows of the old
-- `events` table are moved into blocks by the hub right after this script, in the same
-- transaction, and that table is then dropped.
CREATE TABLE event_blocks (
    first_id     INTEGER PRIMARY KEY,           -- the row id
    last_id      INTEGER NOT NULL,
    member_id    INTEGER NOT NULL,
    day          INTEGER NOT NULL,              -- days since 1970-01-01 (UTC) of every event
    collector_id INTEGER NOT NULL,
    min_time_ms  INTEGER NOT NULL,
    max_time_ms  INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    data         BLOB NOT NULL                  -- zstd of JSON lines [id,{event}]
);
-- A member's latest events: blocks newest first.
CREATE INDEX event_blocks_recent ON event_blocks(member_id, max_time_ms);
-- Retention drops whole days.
CREATE INDEX event_blocks_day ON event_blocks(day);

-- The next event id, never reused: retention may drop the blocks with the largest ids.
CREATE TABLE event_ids (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    next INTEGER NOT NULL
);
INSERT INTO event_ids (one, next) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM events;
