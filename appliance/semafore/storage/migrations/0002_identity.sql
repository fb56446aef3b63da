-- Identity: organisations, members, devices and their public keys, OTP codes and send
-- counters, enrolment tickets, refresh-token chains.
--
-- Phone numbers never appear in clear: `phone_hmac` is HMAC-SHA256 under an appliance key
-- (for lookup and uniqueness), `phone_sealed` is AES-256-GCM (nonce || ciphertext) under
-- another. Secrets presented by clients (OTP codes, enrolment tickets, refresh tokens) are
-- stored only as keyed hashes. Times are integer seconds since the epoch (UTC).

CREATE TABLE orgs (
    org_id        TEXT PRIMARY KEY,            -- random, 128 bits
    name          TEXT NOT NULL,
    member_limit  INTEGER NOT NULL CHECK (member_limit >= 1),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
    user_id          TEXT PRIMARY KEY,         -- opaque, random, 128 bits (PROTOCOL s3)
    org_id           TEXT NOT NULL REFERENCES orgs(org_id) ON DELETE CASCADE,
    phone_hmac       BLOB NOT NULL UNIQUE,     -- one account per phone number, appliance-wide
    phone_sealed     BLOB NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    joined_at        INTEGER NOT NULL,
    last_active_day  INTEGER,                  -- days since the epoch (day granularity only)
    next_device_id   INTEGER NOT NULL DEFAULT 1 -- device ids are never reused within a user
) STRICT;
CREATE INDEX members_by_org ON members(org_id, joined_at);

CREATE TABLE devices (
    user_id                     TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    device_id                   INTEGER NOT NULL CHECK (device_id BETWEEN 1 AND 2147483647),
    status                      TEXT NOT NULL CHECK (status IN ('pending', 'approved')),
    identity_key                BLOB NOT NULL CHECK (length(identity_key) = 32),
    identity_signing_key        BLOB NOT NULL CHECK (length(identity_signing_key) = 32),
    identity_binding_signature  BLOB NOT NULL CHECK (length(identity_binding_signature) = 64),
    registered_at               INTEGER NOT NULL,
    approved_at                 INTEGER,
    last_active_day             INTEGER,
    PRIMARY KEY (user_id, device_id)
) STRICT;
CREATE INDEX devices_pending ON devices(status, registered_at);

-- The current signed pre key of each device (PROTOCOL s4.3, s4.5).
CREATE TABLE signed_pre_keys (
    user_id     TEXT NOT NULL,
    device_id   INTEGER NOT NULL,
    key_id      INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
    signature   BLOB NOT NULL CHECK (length(signature) = 64),
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;

-- One-time pre keys, each handed out at most once and deleted when it is (PROTOCOL s4.5).
CREATE TABLE one_time_pre_keys (
    user_id     TEXT NOT NULL,
    device_id   INTEGER NOT NULL,
    key_id      INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;

-- A pending device polls its status with a secret issued at registration; the row outlives
-- a rejection so the device can learn that it was rejected.
CREATE TABLE enrolment_credentials (
    secret_hash  BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    device_id    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    outcome      TEXT CHECK (outcome IN ('rejected'))
) STRICT;
CREATE INDEX enrolment_credentials_by_device ON enrolment_credentials(user_id, device_id);

-- Issued when a member proves an OTP code: names the user_id and the reserved device_id the
-- device must sign into its identity binding before it registers.
CREATE TABLE enrolment_tickets (
    ticket_hash  BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    device_id    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

-- At most one live code per (number, purpose); a new send replaces the old code.
CREATE TABLE otp_codes (
    phone_hmac   BLOB NOT NULL,
    purpose      TEXT NOT NULL,
    code_hmac    BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    failed_tries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (phone_hmac, purpose)
) STRICT;

-- Send counters for rate limits: `subject` is a keyed hash of a number or a client address.
CREATE TABLE otp_sends (
    kind     TEXT NOT NULL CHECK (kind IN ('number', 'address')),
    subject  BLOB NOT NULL,
    sent_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX otp_sends_by_subject ON otp_sends(kind, subject, sent_at);

-- Refresh tokens: single use, rotating. Used tokens stay (used_at set) until the chain
-- expires so that replaying one is detected and kills the whole chain.
CREATE TABLE refresh_tokens (
    token_hash   BLOB PRIMARY KEY,
    chain_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    device_id    INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX refresh_tokens_by_chain ON refresh_tokens(chain_id);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens(user_id, device_id);

-- Every removed device (chain_id NULL) and every killed refresh chain, so that each process
-- (the server when the CLI revokes) drops cached approvals and closes connections at once.
-- Rows are pruned once no access token they could concern is still valid.
CREATE TABLE session_revocations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    device_id   INTEGER NOT NULL,
    chain_id    TEXT,
    revoked_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX session_revocations_by_time ON session_revocations(revoked_at);
