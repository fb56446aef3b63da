-- Files: one row per blob, from the creation of its upload until it expires or is deleted.
-- The bytes live in the blob directory (partial/<file_id> while uploading, <xx>/<file_id> once
-- complete); the server never sees plaintext. Times are integer seconds since the epoch (UTC).
--
-- No foreign keys to members or devices: a blob outlives its uploader's devices (it is still
-- reachable through messages already delivered) and goes only by expiry or deletion, so its
-- file is always removed together with its row.

CREATE TABLE files (
    file_id      TEXT PRIMARY KEY CHECK (length(file_id) = 32),  -- 160 random bits, base32
    org_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,              -- the uploading member
    device_id    INTEGER NOT NULL,           -- and device
    length       INTEGER NOT NULL CHECK (length >= 0),  -- declared blob length in bytes
    received     INTEGER NOT NULL DEFAULT 0 CHECK (received BETWEEN 0 AND length),
    state        TEXT NOT NULL CHECK (state IN ('uploading', 'complete')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,           -- last bytes received (abandoned-upload sweep)
    completed_at INTEGER,
    expires_at   INTEGER,                    -- set when complete: completed_at + retention
    CHECK ((state = 'complete') = (completed_at IS NOT NULL AND expires_at IS NOT NULL)),
    CHECK (state = 'uploading' OR received = length)
) STRICT;

-- Quota: every row of an organisation counts its declared length until it is removed.
CREATE INDEX files_by_org ON files(org_id);
CREATE INDEX files_open_by_device ON files(user_id, device_id) WHERE state = 'uploading';
CREATE INDEX files_uploading_by_age ON files(updated_at) WHERE state = 'uploading';
CREATE INDEX files_by_expiry ON files(expires_at) WHERE state = 'complete';
