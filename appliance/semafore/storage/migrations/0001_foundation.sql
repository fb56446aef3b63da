-- Foundation: appliance-wide key/value metadata (instance id, created-at, ...).
CREATE TABLE appliance_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
