-- Rollup rows are counters, updated in place batch after batch. With room left in each page,
-- PostgreSQL writes the new row version beside the old one without touching the indexes (a
-- HOT update); with full pages every update also writes both of rollup_src's indexes.
-- Applies to pages written from now on.
ALTER TABLE rollup_src SET (fillfactor = 70);
ALTER TABLE rollup_port SET (fillfactor = 70);
ALTER TABLE rollup_daily SET (fillfactor = 70);
