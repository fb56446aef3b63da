"""The `semafore-client` commands. Each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from semafore.client import errors, transfer
from semafore.client.api import ApiClient
from semafore.client.attachments import open_blob, receive_path, seal_file
from semafore.client.device import Device
from semafore.client.device_state import DeviceState
from semafore.client.enrolment import poll_status, register_device, wait_for_approval
from semafore.client.home import ca_for, pin_ca
from semafore.client.keysource import (
    Passphrase,
    keyring_available,
    passphrase_from_env_or_prompt,
)
from semafore.client.keystore import Keystore, UseKeyring
from semafore.client.listener import listen_forever
from semafore.client.output import emit, message_record, warn
from semafore.client.transfer import ProgressBar
from semafore.protocol import DeviceAddress


@dataclass
class Session:
    """An open, approved device: keystore, API client, device."""

    ks: Keystore
    api: ApiClient
    device: Device


def _print(args: argparse.Namespace, human: str, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False), flush=True)
    else:
        print(human, flush=True)


def _server(args: argparse.Namespace, ks: Keystore | None) -> str:
    url = args.server or (ks.device().server_url if ks is not None else None)
    if not url:
        raise errors.ClientError("which appliance? pass --server https://HOST:PORT")
    return str(url)


@contextlib.asynccontextmanager
async def open_device(args: argparse.Namespace) -> AsyncIterator[Session]:
    """The enrolled, approved device in --home; refuses pending/rejected/revoked ones."""
    ks = Keystore.open(args.home, passphrase_from_env_or_prompt)
    api = ApiClient.connect(_server(args, ks), ca_for(args.home, args.ca), ks)
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
            _show_notices(session.device)
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


def _show_notices(device: Device) -> None:
    for text in device.state.take_notices():
        warn(text)
    for text in device.warnings:
        warn(text)
    device.warnings.clear()


# -- enrolment and status ---------------------------------------------------------------------


async def enrol(args: argparse.Namespace) -> int:
    home = args.home
    if Keystore.exists(home):
        ks = Keystore.open(home, passphrase_from_env_or_prompt)
        status = ks.device().status
        if status == "pending":
            return await _wait(args, ks)  # resume a pending enrolment
        ks.close()
        if status != "new":
            raise errors.KeystoreExists(f"{home} already holds an enrolled device")
        # Registration never completed (the server was not reached): nothing was sent or
        # received with these keys, so start over with fresh ones.
        Keystore.remove(home)
    if args.ca is None:
        raise errors.ClientError("pass --ca FILE: the appliance CA certificate to pin")
    server = _server(args, None)
    api = ApiClient.connect(server, args.ca)
    try:
        if args.code is None:
            await api.request_code(args.phone)
            if args.request_code_only:
                _print(args, "code requested", {"status": "code_requested"})
                return 0
            code = _read_code()
        else:
            code = args.code
        ticket = await api.verify_code(args.phone, code.strip())
        key_source = _key_source(args.keyring)
        ks = await register_device(api, home, key_source, server, ticket)
        pin_ca(home, args.ca)
    finally:
        await api.close()
    return await _wait(args, ks)


def _key_source(want_keyring: bool) -> UseKeyring | Passphrase:
    """The OS keyring if asked for and available; otherwise a passphrase."""
    if want_keyring:
        if keyring_available():
            return UseKeyring()
        warn("the OS keyring is not available (install `keyring`); using a passphrase")
    return passphrase_from_env_or_prompt(confirm=True)


def _read_code() -> str:
    print("Code: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not sys.stdin.isatty():
        print(file=sys.stderr)
    if not line.strip():
        raise errors.ClientError("no code given")
    return line.strip()


async def _wait(args: argparse.Namespace, ks: Keystore) -> int:
    device = ks.device()
    api = ApiClient.connect(_server(args, ks), ca_for(args.home, args.ca))
    who = f"{device.user_id}/{device.device_id}"
    try:
        if args.no_wait:
            state = await poll_status(api, ks)
        else:
            state = await wait_for_approval(
                api,
                ks,
                args.wait_timeout,
                on_pending=lambda: print(
                    f"registered as {who}; waiting for an administrator to approve this device",
                    file=sys.stderr,
                    flush=True,
                ),
            )
    finally:
        await api.close()
        ks.close()
    data = {"status": state.status, "user_id": state.user_id, "device_id": state.device_id}
    if state.status == "rejected":
        raise errors.Revoked(f"an administrator rejected device {who}")
    if state.status == "pending" and not args.no_wait:
        raise errors.NotApproved(f"device {who} is still waiting for approval")
    _print(args, f"device {who}: {state.status}", data)
    return 0


async def status(args: argparse.Namespace) -> int:
    ks = Keystore.open(args.home, passphrase_from_env_or_prompt)
    try:
        device = ks.device()
        data: dict[str, Any] = {
            "home": str(args.home),
            "server": device.server_url,
            "user_id": device.user_id,
            "device_id": device.device_id,
            "status": device.status,
        }
        if device.status == "pending":
            api = ApiClient.connect(_server(args, ks), ca_for(args.home, args.ca))
            try:
                data["status"] = (await poll_status(api, ks)).status
            finally:
                await api.close()
    finally:
        ks.close()
    if data["status"] == "approved":
        async with open_device(args) as s:
            await s.device.maintain_pre_keys()
            data["one_time_pre_keys_on_server"] = await s.api.one_time_pre_key_count()
            data["unsent"] = len(s.device.messenger.messages.unsent())
    human = "\n".join(f"{k}: {v}" for k, v in data.items())
    _print(args, human, data)
    return 0


async def contacts(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        members = await s.api.directory()
    if args.json:
        print(json.dumps({"members": members}, ensure_ascii=False))
    else:
        for m in members:
            extra = " ".join(f"{k}={v}" for k, v in sorted(m.items()) if k != "user_id")
            print(f"{m.get('user_id')}  {extra}".rstrip())
    return 0


# -- messaging --------------------------------------------------------------------------------


async def send(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        await s.device.resend_unsent()
        result = await s.device.send_text(await resolve_user(s, args.user), args.text)
    _print(
        args,
        f"sent to {args.user} ({result.devices} device(s))",
        {"msg_id": result.msg_id, "devices": result.devices},
    )
    return 0


async def listen(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        device = s.device
        await device.resend_unsent()
        await device.maintain_pre_keys()
        seen = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout

        def show(received: Any) -> bool:
            nonlocal seen
            emit(message_record(received, device.address, device.messenger.groups), args.json)
            seen += 1
            return args.count is not None and seen >= args.count

        if args.once:
            while True:
                batch = await device.drain()
                for r in batch:
                    if show(r):
                        return 0
                if not batch:
                    break
            return 0
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(listen_forever(device, s.api, show), remaining)
    if args.count is not None and seen < args.count:
        raise errors.ClientError(f"timed out after {seen} of {args.count} message(s)")
    return 0


# -- files (PROTOCOL s9) ------------------------------------------------------------------------


async def send_file(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.to) if args.group else None
        user_id = None if group is not None else await resolve_user(s, args.to)
        sealed = await asyncio.to_thread(seal_file, args.path, args.home)
        try:
            bar = ProgressBar("uploading", sealed.blob_size)
            file_id = await transfer.upload(s.api.http, sealed.blob_path, sealed.blob_size, bar)
            bar.done()
            result = await s.device.send_attachment(
                sealed.pointer(file_id), args.caption, user_id=user_id, group=group
            )
        finally:
            sealed.discard()
    _print(
        args,
        f"sent {sealed.name} ({sealed.secrets.size} bytes) to {args.to}"
        f" ({result.devices} device(s))",
        {
            "msg_id": result.msg_id,
            "devices": result.devices,
            "file_id": file_id,
            "size": sealed.secrets.size,
        },
    )
    return 0


async def get_file(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        await s.device.drain()  # the message may still be waiting on the server
        message = s.device.messenger.messages.find(args.message)
        if message is None or message.content.att is None:
            raise errors.ClientError(f"no received file with message id {args.message}")
        pointer = message.content.att
        target = receive_path(args.out, pointer)
        bar = ProgressBar("downloading", pointer.size)
        size = await open_blob(transfer.download(s.api.http, pointer.id, bar), pointer, target)
        bar.done()
    _print(args, f"saved {target} ({size} bytes)", {"path": str(target), "size": size})
    return 0


# -- groups -----------------------------------------------------------------------------------


async def group_create(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = await s.device.group_create(args.name, await resolve_users(s, args.members))
    _print(args, f"group {group.name} created: {group.id_text}", _group_json(group))
    return 0


async def group_add(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        group = await s.device.group_change(group, add=await resolve_users(s, args.members))
    _print(args, f"group {group.name}: {', '.join(group.members)}", _group_json(group))
    return 0


async def group_remove(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        members = await resolve_users(s, args.members)
        unknown = [u for u in members if u not in group.members]
        if unknown:
            raise errors.ClientError(f"not in group {group.name}: {', '.join(unknown)}")
        group = await s.device.group_change(group, remove=members)
    _print(args, f"group {group.name}: {', '.join(group.members)}", _group_json(group))
    return 0


async def group_send(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        if s.device.address.user_id not in group.members:
            raise errors.ClientError(f"you are not a member of group {group.name}")
        result = await s.device.send_group(group, args.text)
    _print(
        args,
        f"sent to group {group.name} ({result.devices} device(s))",
        {"msg_id": result.msg_id, "devices": result.devices, "group": group.id_text},
    )
    return 0


async def group_list(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        groups = s.device.messenger.groups.all()
    if args.json:
        print(json.dumps({"groups": [_group_json(g) for g in groups]}))
    else:
        for g in groups:
            print(f"{g.id_text}  {g.name}  rev {g.rev}  members: {', '.join(g.members)}")
    return 0


def _group_json(group: Any) -> dict[str, Any]:
    return {
        "id": group.id_text,
        "name": group.name,
        "rev": group.rev,
        "members": list(group.members),
    }


# -- verification (PROTOCOL s8) ---------------------------------------------------------------


async def _current_safety_number(s: Session, user_id: str) -> Any:
    """Refresh both users' device lists (recording identities), then compute the number."""
    device = s.device
    if user_id == device.address.user_id:
        raise errors.ClientError("compare safety numbers with someone else")
    await device.refresh_identities([user_id])
    return device.safety_number(user_id)


async def safety_number(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        args.user = await resolve_user(s, args.user)
        number = await _current_safety_number(s, args.user)
        contact = s.device.state.manager.identities.contact(args.user)
        verified = bool(contact and contact.verified)
    _print(
        args,
        f"{number.display()}\n({'verified' if verified else 'not verified'})",
        {"user": args.user, "safety_number": number.digits, "verified": verified},
    )
    return 0


async def verify(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        args.user = await resolve_user(s, args.user)
        number = await _current_safety_number(s, args.user)
        if args.number is not None:
            given = "".join(ch for ch in args.number if ch.isdigit())
            if given != number.digits:
                raise errors.UntrustedIdentity(
                    f"the safety number does not match; {args.user} is NOT verified"
                )
        with s.device.state.step() as m:
            m.set_verified(args.user)
    _print(
        args,
        f"{args.user} verified\n{number.display()}",
        {"user": args.user, "verified": True, "safety_number": number.digits},
    )
    return 0


async def trust(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        args.user = await resolve_user(s, args.user)
        await s.device.refresh_identities([args.user])
        m = s.device.state.manager
        contact = m.identities.contact(args.user)
        if contact is None:
            raise errors.UnknownContact(f"no known devices for {args.user}")
        held = [i for i, d in contact.devices.items() if d.needs_confirmation]
        with s.device.state.step() as m:
            for device_id in held:
                m.confirm_identity(DeviceAddress(args.user, device_id))
    _print(
        args,
        f"{args.user}: accepted {len(held)} new or changed device(s); not verified",
        {"user": args.user, "accepted_devices": held, "verified": False},
    )
    return 0
