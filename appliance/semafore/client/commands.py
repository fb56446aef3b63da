"""The `semafore-client` commands for enrolment, status and messages. Each takes the parsed
arguments and returns an exit code (contact_commands.py has groups and verification)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import unicodedata
from typing import Any

from semafore.client import errors, outgoing_files, transfer
from semafore.client.api import ApiClient
from semafore.client.attachments import open_blob, receive_path
from semafore.client.cli_support import open_device, print_result, resolve_user, server_url
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
from semafore.client.pending_uploads import Destination
from semafore.client.transfer import ProgressBar

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
    device_name = _device_name(getattr(args, "device_name", None))
    server = server_url(args, None)
    api = ApiClient.connect(server, args.ca)
    try:
        if args.code is None:
            await api.request_code(args.phone)
            if args.request_code_only:
                print_result(args, "code requested", {"status": "code_requested"})
                return 0
            code = _read_code()
        else:
            code = args.code
        ticket = await api.verify_code(args.phone, code.strip())
        key_source = _key_source(args.keyring)
        ks = await register_device(api, home, key_source, server, ticket,
                                   device_name=device_name)
        pin_ca(home, args.ca)
    finally:
        await api.close()
    return await _wait(args, ks)


def _device_name(value: str | None) -> str | None:
    """Catch a name the server would refuse before a code is spent (it checks again)."""
    if value is None:
        return None
    name = value.strip()
    if not 1 <= len(name) <= 64 or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise errors.ClientError("--device-name takes 1 to 64 characters, no control characters")
    return name


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
    api = ApiClient.connect(server_url(args, ks), ca_for(args.home, args.ca))
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
    print_result(args, f"device {who}: {state.status}", data)
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
            api = ApiClient.connect(server_url(args, ks), ca_for(args.home, args.ca))
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
    print_result(args, human, data)
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
    print_result(
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
        sent = await outgoing_files.send_file(
            s,
            args.home,
            args.path,
            Destination(args.to, bool(args.group)),
            args.caption,
            user_id=user_id,
            group=group,
        )
    size = sent.sealed.secrets.size
    print_result(
        args,
        f"sent {sent.sealed.name} ({size} bytes) to {args.to} ({sent.result.devices} device(s))",
        {
            "msg_id": sent.result.msg_id,
            "devices": sent.result.devices,
            "file_id": sent.file_id,
            "size": size,
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
    print_result(args, f"saved {target} ({size} bytes)", {"path": str(target), "size": size})
    return 0
