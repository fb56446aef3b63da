"""Device sessions: pinned JWT verification (each rejection its own test), key rotation with an
overlap window, rotating single-use refresh tokens with reuse detection, revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semafore.services import Unauthenticated
from semafore.services.sessions import AUDIENCE_DEVICE, RefreshRejected
from support.identity import IdentityEnv, approved_device, identity_env

MEMBER = "+447700900002"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        org, _ = await env.services.orgs.create_org("Acme", "+447700900001")
        await env.services.members.add_member(org.org_id, MEMBER, actor="operator")
        registration, tokens = await approved_device(env, org.org_id, MEMBER)
        env.org_id = org.org_id  # type: ignore[attr-defined]
        env.registration = registration  # type: ignore[attr-defined]
        env.tokens = tokens  # type: ignore[attr-defined]
        yield env


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))),
            json.loads(base64.urlsafe_b64decode(pad(payload))), signature)


def good_claims(env: IdentityEnv) -> dict[str, Any]:
    return parts(env.tokens.access_token)[1]


def current_private_key(env: IdentityEnv) -> tuple[str, Ed25519PrivateKey]:
    key = [k for k in env.services.sessions.keyring._store.load_jwt_keys() if not k.retired_at][-1]
    return key.kid, Ed25519PrivateKey.from_private_bytes(key.private_seed)


async def refused(env: IdentityEnv, token: object, code: str = "token_invalid") -> None:
    with pytest.raises(Unauthenticated) as caught:
        await env.services.sessions.authenticate(token)
    assert caught.value.code == code


async def test_a_valid_token_authenticates_the_device(env: IdentityEnv) -> None:
    principal = await env.services.sessions.authenticate(env.tokens.access_token)
    assert (principal.user_id, principal.device_id, principal.org_id) == (
        env.registration.user_id, env.registration.device_id, env.org_id
    )
    header, claims, _ = parts(env.tokens.access_token)
    assert header["alg"] == "EdDSA" and header["kid"]
    assert claims["aud"] == AUDIENCE_DEVICE and claims["iss"] == "semafore"
    assert claims["exp"] - claims["iat"] == 900


async def test_alg_none_is_refused(env: IdentityEnv) -> None:
    header, claims, _ = parts(env.tokens.access_token)
    unsigned_header = b64(json.dumps({**header, "alg": "none"}).encode())
    forged = f"{unsigned_header}.{b64(json.dumps(claims).encode())}."
    await refused(env, forged)


async def test_hs256_signed_with_the_public_key_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    public = private.public_key().public_bytes_raw()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(good_claims(env)).encode())
    for secret in (public, b64(public).encode()):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        await refused(env, f"{header}.{payload}.{b64(mac)}")


async def test_unknown_kid_is_refused(env: IdentityEnv) -> None:
    token = jwt.encode(good_claims(env), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": "0123456789abcdef"})
    await refused(env, token)


async def test_known_kid_with_another_key_is_refused(env: IdentityEnv) -> None:
    kid, _ = current_private_key(env)
    token = jwt.encode(good_claims(env), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": kid})
    await refused(env, token)


async def test_missing_kid_is_refused(env: IdentityEnv) -> None:
    _, private = current_private_key(env)
    await refused(env, jwt.encode(good_claims(env), private, algorithm="EdDSA"))


async def test_expired_token_is_refused(env: IdentityEnv) -> None:
    env.clock.advance(899)
    await env.services.sessions.authenticate(env.tokens.access_token)
    env.clock.advance(1)
    await refused(env, env.tokens.access_token, "token_expired")


async def test_wrong_audience_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    for audience in ("semafore-admin", ["semafore-admin"], "other"):
        token = jwt.encode({**good_claims(env), "aud": audience}, private, algorithm="EdDSA",
                           headers={"kid": kid})
        await refused(env, token)


async def test_wrong_issuer_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    token = jwt.encode({**good_claims(env), "iss": "evil"}, private, algorithm="EdDSA",
                       headers={"kid": kid})
    await refused(env, token)


async def test_tampered_token_is_refused(env: IdentityEnv) -> None:
    header, payload, signature = env.tokens.access_token.split(".")
    claims = parts(env.tokens.access_token)[1]
    other = b64(json.dumps({**claims, "did": claims["did"] + 1}).encode())
    await refused(env, f"{header}.{other}.{signature}")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    await refused(env, f"{header}.{payload}.{flipped}")


async def test_admin_typed_token_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    token = jwt.encode({**good_claims(env), "typ": "admin"}, private, algorithm="EdDSA",
                       headers={"kid": kid})
    await refused(env, token)


async def test_missing_required_claim_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    for claim in ("sub", "did", "sid", "exp", "iat", "jti", "typ"):
        claims = {k: v for k, v in good_claims(env).items() if k != claim}
        await refused(env, jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid}))


async def test_overlong_lifetime_is_refused(env: IdentityEnv) -> None:
    kid, private = current_private_key(env)
    claims = {**good_claims(env), "exp": good_claims(env)["iat"] + 3600}
    await refused(env, jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid}))


@pytest.mark.parametrize("junk", ["", "a.b.c", "not a token", None, 12, "x" * 5000])
async def test_garbage_is_refused(env: IdentityEnv, junk: object) -> None:
    await refused(env, junk)


async def test_key_rotation_keeps_old_tokens_valid_for_the_overlap(env: IdentityEnv) -> None:
    sessions = env.services.sessions
    old_kid, old_private = current_private_key(env)
    new_kid = await sessions.rotate_signing_key(actor="operator")
    assert new_kid != old_kid
    await sessions.authenticate(env.tokens.access_token)  # signed by the retired key
    fresh = await sessions.refresh(env.tokens.refresh_token)
    assert parts(fresh.access_token)[0]["kid"] == new_kid
    env.clock.advance(3600)  # the overlap window (auth.jwt_key_overlap_seconds) has passed
    claims = {**good_claims(env), "iat": int(env.clock.now()), "exp": int(env.clock.now()) + 60}
    late = jwt.encode(claims, old_private, algorithm="EdDSA", headers={"kid": old_kid})
    await refused(env, late)


async def test_refresh_rotates_and_each_token_works_once(env: IdentityEnv) -> None:
    sessions = env.services.sessions
    first = await sessions.refresh(env.tokens.refresh_token)
    assert first.refresh_token != env.tokens.refresh_token
    second = await sessions.refresh(first.refresh_token)
    principal = await sessions.authenticate(second.access_token)
    assert principal.device_id == env.registration.device_id


async def test_reusing_an_old_refresh_token_kills_the_whole_chain(env: IdentityEnv) -> None:
    sessions = env.services.sessions
    rotated = await sessions.refresh(env.tokens.refresh_token)
    await sessions.authenticate(rotated.access_token)
    with pytest.raises(RefreshRejected):
        await sessions.refresh(env.tokens.refresh_token)  # the replay
    with pytest.raises(RefreshRejected):
        await sessions.refresh(rotated.refresh_token)  # the chain is dead
    await refused(env, rotated.access_token, "session_revoked")
    await refused(env, env.tokens.access_token, "session_revoked")
    async with (
        env.database.read() as conn,
        conn.execute("SELECT event FROM audit_entries ORDER BY seq DESC LIMIT 1") as cursor,
    ):
        assert (await cursor.fetchone())[0] == "session.refresh_reused"


async def test_refresh_token_expires(env: IdentityEnv) -> None:
    env.clock.advance(30 * 86_400)
    with pytest.raises(RefreshRejected):
        await env.services.sessions.refresh(env.tokens.refresh_token)


@pytest.mark.parametrize("junk", ["", "sfr_nope", None, 5, "sfr_" + "a" * 200])
async def test_unknown_refresh_tokens_are_refused(env: IdentityEnv, junk: object) -> None:
    with pytest.raises(RefreshRejected):
        await env.services.sessions.refresh(junk)


async def test_refresh_tokens_are_stored_only_hashed(env: IdentityEnv) -> None:
    await env.database.close()
    data = b"".join(
        p.read_bytes() for p in env.settings.storage.data_dir.glob("semafore.db*")
    )
    await env.database.open()
    secret = env.tokens.refresh_token.encode()
    assert secret not in data and secret[4:] not in data
