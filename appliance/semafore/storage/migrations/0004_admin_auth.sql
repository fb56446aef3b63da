-- Admin sign-in: TOTP second factor, recovery codes, sign-ins in progress, admin sessions,
-- API tokens for automation, and failed sign-in counters for rate limits.
--
-- Every secret a client presents (session tokens, API tokens, sign-in tickets, recovery codes)
-- is stored only as a keyed hash; the TOTP secret is sealed (AES-256-GCM, nonce || ciphertext)
-- under an appliance key. Times are integer seconds since the epoch (UTC).

-- An admin's TOTP secret; confirmed_at is NULL while enrolment (first sign-in) is unfinished.
-- last_step is the highest RFC 6238 time step accepted, so a code is never accepted twice.
CREATE TABLE admin_totp (
    user_id        TEXT PRIMARY KEY REFERENCES members(user_id) ON DELETE CASCADE,
    secret_sealed  BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER,
    last_step      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE admin_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Issued when the phone code is proven; exchanged for a session with the second factor.
CREATE TABLE admin_sign_ins (
    ticket_hash   BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    failed_tries  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX admin_sign_ins_by_expiry ON admin_sign_ins(expires_at);

-- Admin sessions: idle expiry from last_seen_at, absolute expiry at expires_at; reauth_at is
-- the last time the second factor was proven (approve/revoke in the portal want it recent).
CREATE TABLE admin_sessions (
    token_hash    BLOB PRIMARY KEY,
    session_id    TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    reauth_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX admin_sessions_by_user ON admin_sessions(user_id);
CREATE INDEX admin_sessions_by_expiry ON admin_sessions(expires_at);

-- Scoped API tokens. They die with the admin who created them (and stop working while that
-- member is not an admin).
CREATE TABLE admin_api_tokens (
    token_id       TEXT PRIMARY KEY,
    token_hash     BLOB NOT NULL UNIQUE,
    org_id         TEXT NOT NULL REFERENCES orgs(org_id) ON DELETE CASCADE,
    created_by     TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    scopes         TEXT NOT NULL,              -- space-separated, sorted
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    last_used_day  INTEGER                     -- days since the epoch
) STRICT;
CREATE INDEX admin_api_tokens_by_org ON admin_api_tokens(org_id, created_at);

-- Failed sign-in attempts, for rate limits: `subject` is a keyed hash of the account's phone
-- lookup hash or of the client address.
CREATE TABLE admin_sign_in_failures (
    kind       TEXT NOT NULL CHECK (kind IN ('account', 'address')),
    subject    BLOB NOT NULL,
    failed_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX admin_sign_in_failures_by_subject ON admin_sign_in_failures(kind, subject, failed_at);
