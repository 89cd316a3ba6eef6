-- Version 7: leases, so a background task runs in one hub process at a time.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
