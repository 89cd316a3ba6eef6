-- Raw events as compressed blocks (crates/store/src/block.rs): one row per batch and day instead
-- of a row per event. Partitioned by day like the table it replaces; retention drops a day's
-- partition (event_blocks_d<day>), created on demand by the hub. The rows of the old `events`
-- table are moved into blocks by the hub right after this migration, in the same transaction,
-- and that table is then dropped.
CREATE TABLE event_blocks (
    member_id    BIGINT NOT NULL,
    day          BIGINT NOT NULL,               -- days since 1970-01-01 (UTC) of every event
    first_id     BIGINT NOT NULL,               -- the block's smallest and largest event id;
    last_id      BIGINT NOT NULL,               -- a batch's ids never overlap another's
    collector_id BIGINT NOT NULL,
    min_time_ms  BIGINT NOT NULL,
    max_time_ms  BIGINT NOT NULL,
    events       INTEGER NOT NULL,
    data         BYTEA NOT NULL,                -- zstd of JSON lines [id,{event}]
    PRIMARY KEY (member_id, day, first_id)
) PARTITION BY RANGE (day);
-- A member's latest events: blocks newest first.
CREATE INDEX event_blocks_recent ON event_blocks (member_id, max_time_ms);
