-- The per-source rollup as one row per batch, member and day holding every source of that
-- batch with its count (crate::srcblock), instead of a row per member, day and source. On
-- traffic from many sources the row-per-source upsert and its three indexes were three
-- quarters of PostgreSQL's ingest work (5-10 us a source); a block is one row. Readers sum
-- the blocks of the days they ask about; the campaign count tails new blocks by transaction.
-- The rows of rollup_src are moved into blocks (one per member and day) right after this
-- migration, then that table is dropped.
CREATE TABLE rollup_src_blocks (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id BIGINT NOT NULL,
    day       BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    -- The writing transaction: a reader that remembers the oldest transaction still running
    -- at its last read (pg_snapshot_xmin) finds every block committed since, in any order.
    xid       XID8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX rollup_src_blocks_xid ON rollup_src_blocks(xid);
CREATE INDEX rollup_src_blocks_member_day ON rollup_src_blocks(member_id, day);
CREATE INDEX rollup_src_blocks_day ON rollup_src_blocks(day);
-- Already compact; PostgreSQL's own compression would spend CPU for little.
ALTER TABLE rollup_src_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
