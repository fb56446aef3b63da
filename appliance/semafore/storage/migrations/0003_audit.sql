-- Audit log: one global, append-only hash chain of platform events (docs/audit.md).
-- Each entry carries the hash of the previous one; checkpoints sign (tree size, head hash)
-- with the appliance's own Ed25519 key, whose public half is stored here too so a copied
-- database can be verified offline. Triggers refuse UPDATE and DELETE on all three tables.

CREATE TABLE audit_entries (
    seq        INTEGER PRIMARY KEY,            -- 1, 2, 3, ... without gaps
    at_ms      INTEGER NOT NULL,               -- milliseconds since the epoch (UTC)
    org_id     TEXT,                           -- NULL for appliance-wide events
    actor      TEXT NOT NULL,                  -- e.g. member:<id>, operator, system
    event      TEXT NOT NULL,                  -- e.g. device.approved
    target     TEXT,                           -- e.g. device:<id>
    data       TEXT,                           -- canonical JSON object, never secrets
    prev_hash  BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE INDEX audit_entries_org_seq ON audit_entries (org_id, seq);
CREATE INDEX audit_entries_org_event ON audit_entries (org_id, event, seq);
CREATE INDEX audit_entries_org_at ON audit_entries (org_id, at_ms);

CREATE TABLE audit_checkpoint_keys (
    key_id        TEXT PRIMARY KEY,             -- first 16 hex digits of SHA-256(public_key)
    public_key    BLOB NOT NULL CHECK (length(public_key) = 32),
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_checkpoints (
    id         INTEGER PRIMARY KEY,
    tree_size  INTEGER NOT NULL CHECK (tree_size >= 0),
    head_hash  BLOB NOT NULL CHECK (length(head_hash) = 32),
    at_ms      INTEGER NOT NULL,
    key_id     TEXT NOT NULL REFERENCES audit_checkpoint_keys (key_id),
    signature  BLOB NOT NULL CHECK (length(signature) = 64)
) STRICT;

CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size);

-- Appends only at the head: the next sequence number, linked to the current head's hash.
-- (This also refuses INSERT OR REPLACE over an existing entry.)
CREATE TRIGGER audit_entries_append_at_head BEFORE INSERT ON audit_entries
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_entries)
  OR NEW.prev_hash IS NOT COALESCE(
       (SELECT hash FROM audit_entries ORDER BY seq DESC LIMIT 1), zeroblob(32))
BEGIN SELECT RAISE(ABORT, 'audit entries are appended at the head of the chain'); END;

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoint_keys_no_update BEFORE UPDATE ON audit_checkpoint_keys
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoint_keys_no_delete BEFORE DELETE ON audit_checkpoint_keys
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
