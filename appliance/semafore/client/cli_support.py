"""What every `semafore-client` command shares: opening the device, naming users, output."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from semafore.client import errors
from semafore.client.api import ApiClient
from semafore.client.device import Device
from semafore.client.device_state import DeviceState
from semafore.client.enrolment import poll_status
from semafore.client.home import ca_for
from semafore.client.keysource import passphrase_from_env_or_prompt
from semafore.client.keystore import Keystore
from semafore.client.output import warn


@dataclass
class Session:
    """An open, approved device: keystore, API client, device."""

    ks: Keystore
    api: ApiClient
    device: Device


def print_result(args: argparse.Namespace, human: str, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False), flush=True)
    else:
        print(human, flush=True)


def server_url(args: argparse.Namespace, ks: Keystore | None) -> str:
    url = args.server or (ks.device().server_url if ks is not None else None)
    if not url:
        raise errors.ClientError("which appliance? pass --server https://HOST:PORT")
    return str(url)


@contextlib.asynccontextmanager
async def open_device(args: argparse.Namespace) -> AsyncIterator[Session]:
    """The enrolled, approved device in --home; refuses pending/rejected/revoked ones."""
    ks = Keystore.open(args.home, passphrase_from_env_or_prompt)
    api = ApiClient.connect(server_url(args, ks), ca_for(args.home, args.ca), ks)
    try:
        status = ks.device().status
        if status == "pending":
            status = (await poll_status(api, ks)).status
        if status == "pending":
            raise errors.NotApproved("this device is waiting for approval by an administrator")
        if status in ("rejected", "revoked"):
            raise errors.Revoked(f"this device was {status}; enrol it again in a new --home")
        state = DeviceState(ks)
        session = Session(ks, api, Device(state, api))
        try:
            yield session
        except errors.Revoked:
            with ks.transaction():
                ks.set_status("revoked")
            raise
        finally:
            show_notices(session.device)
    finally:
        await api.close()
        ks.close()


async def resolve_user(s: Session, user: str) -> str:
    """A user id as given, or the member with that phone number (from the directory)."""
    if not user.startswith("+"):
        return user
    for member in await s.api.directory():
        if member.get("phone") == user:
            return str(member["user_id"])
    raise errors.UnknownContact(f"no member with the number {user} in your organisation")


async def resolve_users(s: Session, users: list[str]) -> list[str]:
    return [await resolve_user(s, u) for u in users]


def show_notices(device: Device) -> None:
    for text in device.state.take_notices():
        warn(text)
    for text in device.warnings:
        warn(text)
    device.warnings.clear()
