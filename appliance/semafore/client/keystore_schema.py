"""The keystore's SQLite schema. Columns named `*_sealed` hold AES-256-GCM sealed values
(semafore.client.sealing); everything else is public (public keys, ids, counters, times).
"""

FORMAT_VERSION = 2

# Format 2: files being sent (semafore.client.pending_uploads). One row per sealed blob under
# `outgoing/<blob_id>.blob` that is being uploaded and whose pointer is not yet stored in the
# outbox; `record_sealed` holds the attachment key and digest, the file name and type, the
# source file (absolute path, size, mtime_ns) and the destination. `file_id` is the server's
# upload id once it has one. No semicolons in here: migrations are split on them.
_UPLOADS_V2 = """
CREATE TABLE uploads (
    blob_id        TEXT PRIMARY KEY,
    blob_size      INTEGER NOT NULL,
    file_id        TEXT,
    created_at     INTEGER NOT NULL,
    record_sealed  BLOB NOT NULL
) STRICT
"""

# Later schema changes, append-only: MIGRATIONS[n] takes a keystore from format n-1 to n.
MIGRATIONS: dict[int, str] = {2: _UPLOADS_V2}

SCHEMA = """
CREATE TABLE meta (
    name   TEXT PRIMARY KEY,                 -- format, kdf, key_source, wrapped_data_key
    value  TEXT NOT NULL
) STRICT;

-- This device. One row. `keys_sealed` is semafore.protocol DeviceKeys (identity, signed and
-- one-time pre keys, replay records); it exists once the server has assigned the address.
CREATE TABLE device (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    server_url   TEXT NOT NULL,
    user_id      TEXT,
    device_id    INTEGER,
    status       TEXT NOT NULL CHECK (status IN
                     ('new', 'pending', 'approved', 'rejected', 'revoked')),
    keys_sealed  BLOB,
    created_at   INTEGER NOT NULL
) STRICT;

-- Tokens and enrolment credentials, by name.
CREATE TABLE credentials (
    name    TEXT PRIMARY KEY,
    sealed  BLOB NOT NULL
) STRICT;

-- Non-secret bookkeeping: highest pre key ids the server acknowledged, and the like.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;

-- Pairwise sessions per remote device: the sealed semafore.protocol SessionRecord (the active
-- session and up to five decrypt-only ones, PROTOCOL s7.4 step 8).
CREATE TABLE sessions (
    user_id        TEXT NOT NULL,
    device_id      INTEGER NOT NULL,
    record_sealed  BLOB NOT NULL,
    PRIMARY KEY (user_id, device_id)
) STRICT;

-- Known identities and verification state per remote user (s8.3): the sealed
-- semafore.protocol.ContactIdentity, plus identity-change notices not yet shown to the user.
CREATE TABLE contacts (
    user_id          TEXT PRIMARY KEY,
    identity_sealed  BLOB NOT NULL,
    notices_sealed   BLOB
) STRICT;

-- Decrypted incoming messages, committed together with the ratchet step that produced them.
CREATE TABLE inbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id       TEXT UNIQUE,
    mid             TEXT,                   -- the sender's random message id (for get-file)
    sender_user     TEXT NOT NULL,
    sender_device   INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    content_sealed  BLOB NOT NULL,
    shown           INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX inbox_by_mid ON inbox(mid);

-- Outgoing requests, committed together with the ratchet steps; resent as stored, never
-- re-encrypted (PROTOCOL s6.4).
CREATE TABLE outbox (
    msg_id          TEXT PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    content_sealed  BLOB NOT NULL,          -- the content JSON, for devices added on a 409
    request_sealed  BLOB NOT NULL,          -- {"v":1,"msg_id":...,"envelopes":[...]}
    sent_at         INTEGER
) STRICT;

CREATE TABLE groups (
    group_id  TEXT PRIMARY KEY,
    sealed    BLOB NOT NULL                 -- name, revision, members
) STRICT;
""" + _UPLOADS_V2 + ";\n"
