"""Enrolling this device: phone -> code -> keys -> registration -> wait for approval -> tokens.

The keystore is created when the server has named the device (user_id and device_id come with
the ticket, and the identity binding signs them). Keys are committed before they are uploaded;
the enrolment secret is committed as soon as the server issues it; the tokens handed out once
on approval are committed before anything else is done with them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semafore.client import errors
from semafore.client.api import ApiClient
from semafore.client.device import OPK_UPLOADED, SPK_UPLOADED
from semafore.client.device_state import new_device_keys
from semafore.client.keysource import KeySource
from semafore.client.keystore import Keystore, UseKeyring
from semafore.protocol import DeviceAddress, DeviceKeys
from semafore.protocol.constants import OPK_BATCH
from semafore.protocol.encoding import b64u_encode

ENROLMENT_SECRET = "enrolment_secret"  # noqa: S105 - a credential name
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class EnrolmentState:
    status: str  # pending, approved, rejected
    user_id: str
    device_id: int


def registration_body(keys: DeviceKeys, device_name: str | None = None) -> dict[str, Any]:
    spk = keys.current_signed_pre_key
    body: dict[str, Any] = {
        "identity_key": b64u_encode(keys.identity.ik.data),
        "identity_signing_key": b64u_encode(keys.identity.isk.data),
        "identity_binding_signature": b64u_encode(keys.binding_signature),
        "signed_pre_key_id": spk.key_id,
        "signed_pre_key": b64u_encode(spk.key_pair.public.data),
        "signed_pre_key_signature": b64u_encode(spk.signature),
        "one_time_pre_keys": [
            {"id": k.key_id, "key": b64u_encode(k.key_pair.public.data)}
            for k in keys.one_time_pre_keys
        ],
    }
    if device_name is not None:
        body["device_name"] = device_name  # shown to the organisation's admins
    return body


async def register_device(
    api: ApiClient,
    home: Path,
    key_source: KeySource | UseKeyring,
    server_url: str,
    ticket: dict[str, Any],
    *,
    device_name: str | None = None,
    **keystore_args: Any,
) -> Keystore:
    """Create the keystore with fresh keys for the ticket's address and register them."""
    try:
        address = DeviceAddress(str(ticket["user_id"]), int(ticket["device_id"]))
        ticket_value = str(ticket["ticket"])
    except (KeyError, TypeError, ValueError):
        raise errors.ServerError("server sent a malformed enrolment ticket") from None
    ks = Keystore.create(home, key_source, server_url=server_url, **keystore_args)
    try:
        keys = new_device_keys(address, ks.clock())
        keys, _ = keys.with_new_one_time_pre_keys(OPK_BATCH)
        with ks.transaction():
            ks.put_device_keys(keys)
        answer = await api.register(ticket_value, registration_body(keys, device_name))
        secret = answer.get("enrolment_secret") if isinstance(answer, dict) else None
        if not isinstance(secret, str):
            raise errors.ServerError("server sent no enrolment secret", code="bad_response")
        with ks.transaction():
            ks.put_credential(ENROLMENT_SECRET, secret)
            ks.set_status("pending")
            ks.set_counter(SPK_UPLOADED, keys.current_signed_pre_key.key_id)
            ks.set_counter(OPK_UPLOADED, max(k.key_id for k in keys.one_time_pre_keys))
    except BaseException:
        ks.close()
        raise
    return ks


async def poll_status(api: ApiClient, ks: Keystore) -> EnrolmentState:
    """Ask once; on approval the tokens are stored and the secret dropped."""
    device = ks.device()
    if device.status == "approved":
        return EnrolmentState("approved", device.user_id or "", device.device_id or 0)
    secret = ks.credential(ENROLMENT_SECRET)
    if secret is None:
        raise errors.KeystoreError("this device has no pending enrolment; enrol it again")
    answer = await api.enrolment_status(secret)
    status = str(answer.get("status"))
    if status == "approved":
        api.attach(ks)
        api.store_tokens(answer.get("tokens") or answer)
        with ks.transaction():
            ks.delete_credential(ENROLMENT_SECRET)
            ks.set_status("approved")
    elif status == "rejected":
        with ks.transaction():
            ks.set_status("rejected")
    elif status != "pending":
        raise errors.ServerError("server sent an unknown enrolment status", code="bad_response")
    return EnrolmentState(status, device.user_id or "", device.device_id or 0)


async def wait_for_approval(
    api: ApiClient,
    ks: Keystore,
    wait_seconds: float | None,
    *,
    on_pending: Callable[[], None] | None = None,
) -> EnrolmentState:
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    told = False
    while True:
        state = await poll_status(api, ks)
        if state.status != "pending":
            return state
        if on_pending is not None and not told:
            on_pending()
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            return state
        await asyncio.sleep(POLL_SECONDS)
