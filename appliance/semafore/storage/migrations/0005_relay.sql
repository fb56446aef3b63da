-- Relay: per-device ciphertext queue, send idempotency records, retired signed pre keys, push
-- endpoints. Envelopes are opaque compact JSON bytes; the server never decrypts them.
-- Times are integer milliseconds since the epoch (UTC).

-- One row per (message, target device). `id` is the server message id: AUTOINCREMENT so an id
-- is never reused, even after the newest row is deleted (clients de-duplicate by it), and
-- only ever shown to the owning device (see docs/protocol-transport.md, "Server ids").
CREATE TABLE relay_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    device_id  INTEGER NOT NULL,
    queued_at  INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    envelope   BLOB NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX relay_queue_by_device ON relay_queue(user_id, device_id, id);
CREATE INDEX relay_queue_by_age ON relay_queue(queued_at);

-- Queue depth per device, kept exact by the triggers below (every insert and delete, including
-- expiry and cascades), so the per-device caps are checked without counting rows.
CREATE TABLE relay_depth (
    user_id    TEXT NOT NULL,
    device_id  INTEGER NOT NULL,
    messages   INTEGER NOT NULL CHECK (messages >= 0),
    bytes      INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TRIGGER relay_queue_count_insert AFTER INSERT ON relay_queue BEGIN
    INSERT INTO relay_depth (user_id, device_id, messages, bytes)
    VALUES (new.user_id, new.device_id, 1, new.size)
    ON CONFLICT (user_id, device_id)
    DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER relay_queue_count_delete AFTER DELETE ON relay_queue BEGIN
    UPDATE relay_depth SET messages = messages - 1, bytes = bytes - old.size
    WHERE user_id = old.user_id AND device_id = old.device_id;
END;

-- Idempotency: one record per (sender device, client msg_id), so a retried send is stored
-- once and answered the same. Kept for relay.idempotency_hours.
CREATE TABLE relay_sends (
    user_id    TEXT NOT NULL,
    device_id  INTEGER NOT NULL,
    msg_id     TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    envelopes  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, msg_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX relay_sends_by_age ON relay_sends(sent_at);

-- Signed pre keys replaced by a rotation, kept on record for the retention window (PROTOCOL
-- s4.5), then removed by the expiry sweep.
CREATE TABLE retired_signed_pre_keys (
    user_id     TEXT NOT NULL,
    device_id   INTEGER NOT NULL,
    key_id      INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
    signature   BLOB NOT NULL CHECK (length(signature) = 64),
    retired_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX retired_signed_pre_keys_by_age ON retired_signed_pre_keys(retired_at);

-- At most one push endpoint per device.
CREATE TABLE push_endpoints (
    user_id        TEXT NOT NULL,
    device_id      INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('unifiedpush', 'webhook')),
    url            TEXT NOT NULL,
    registered_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
