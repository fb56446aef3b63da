"""The `semafore-client` commands for groups (PROTOCOL s10) and for safety numbers,
verification and trust (PROTOCOL s8)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from semafore.client import errors
from semafore.client.cli_support import (
    Session,
    open_device,
    print_result,
    resolve_user,
    resolve_users,
)
from semafore.protocol import DeviceAddress

# -- groups -----------------------------------------------------------------------------------


async def group_create(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = await s.device.group_create(args.name, await resolve_users(s, args.members))
    print_result(args, f"group {group.name} created: {group.id_text}", _group_json(group))
    return 0


async def group_add(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        group = await s.device.group_change(group, add=await resolve_users(s, args.members))
    print_result(args, f"group {group.name}: {', '.join(group.members)}", _group_json(group))
    return 0


async def group_remove(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        members = await resolve_users(s, args.members)
        unknown = [u for u in members if u not in group.members]
        if unknown:
            raise errors.ClientError(f"not in group {group.name}: {', '.join(unknown)}")
        group = await s.device.group_change(group, remove=members)
    print_result(args, f"group {group.name}: {', '.join(group.members)}", _group_json(group))
    return 0


async def group_send(args: argparse.Namespace) -> int:
    async with open_device(args) as s:
        group = s.device.messenger.groups.find(args.group)
        if s.device.address.user_id not in group.members:
            raise errors.ClientError(f"you are not a member of group {group.name}")
        result = await s.device.send_group(group, args.text)
    print_result(
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
    print_result(
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
    print_result(
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
    print_result(
        args,
        f"{args.user}: accepted {len(held)} new or changed device(s); not verified",
        {"user": args.user, "accepted_devices": held, "verified": False},
    )
    return 0
