"""``semafore device list|approve|reject|revoke``: devices of an organisation's members."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from semafore.cli.common import add_config_option, load_settings
from semafore.cli.identity_context import OPERATOR, identity_services, print_json, print_table
from semafore.protocol import b64u_encode

DAY = 86_400


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "device", help="list, approve, reject and revoke devices",
        description="Devices register themselves by phone OTP and wait for approval.",
    )
    commands = parser.add_subparsers(dest="device_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="list devices (pending ones included)")
    listing.add_argument("org_id", metavar="ORG", help="organisation id (o_...)")
    listing.add_argument("--pending", action="store_true", help="only devices awaiting approval")
    listing.add_argument("--user", metavar="USER", help="only this member's devices")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(listing)
    listing.set_defaults(func=run_list)

    for action, text, func in (
        ("approve", "approve a pending device (it then collects its tokens)", run_approve),
        ("reject", "reject a pending device", run_reject),
        ("revoke", "revoke a device at once: tokens, keys and queued messages go", run_revoke),
    ):
        sub = commands.add_parser(action, help=text)
        sub.add_argument("org_id", metavar="ORG", help="organisation id (o_...)")
        sub.add_argument("user_id", metavar="USER", help="member's user id (u_...)")
        sub.add_argument("device_id", metavar="DEVICE", type=int, help="device id (a number)")
        add_config_option(sub)
        sub.set_defaults(func=func)


def run_list(args: argparse.Namespace) -> int:
    async def listing() -> int:
        async with identity_services(load_settings(args)) as identity:
            devices = await identity.devices.list_devices(
                args.org_id, user_id=args.user, status="pending" if args.pending else None
            )
        if args.json:
            print_json({"devices": [
                {"user_id": d.user_id, "device_id": d.device_id, "name": d.device_name,
                 "status": d.status,
                 "registered": _day(d.registered_at),
                 "last_active": None if d.last_active_day is None else _day(
                     d.last_active_day * DAY),
                 "identity_key": b64u_encode(d.identity_key)}
                for d in devices
            ]})
        else:
            print_table(
                [(d.user_id, d.device_id, d.device_name, d.status, _day(d.registered_at),
                  b64u_encode(d.identity_key)[:16]) for d in devices],
                ("USER", "DEVICE", "NAME", "STATUS", "REGISTERED", "IDENTITY KEY"),
            )
        return 0

    return asyncio.run(listing())


def run_approve(args: argparse.Namespace) -> int:
    async def approve() -> int:
        async with identity_services(load_settings(args)) as identity:
            await identity.devices.approve(
                args.org_id, args.user_id, args.device_id, actor=OPERATOR
            )
        print(f"device {args.user_id}/{args.device_id} approved")
        return 0

    return asyncio.run(approve())


def run_reject(args: argparse.Namespace) -> int:
    async def reject() -> int:
        async with identity_services(load_settings(args)) as identity:
            await identity.devices.reject(args.org_id, args.user_id, args.device_id, actor=OPERATOR)
        print(f"device {args.user_id}/{args.device_id} rejected")
        return 0

    return asyncio.run(reject())


def run_revoke(args: argparse.Namespace) -> int:
    async def revoke() -> int:
        async with identity_services(load_settings(args)) as identity:
            await identity.devices.revoke(args.org_id, args.user_id, args.device_id, actor=OPERATOR)
        print(f"device {args.user_id}/{args.device_id} revoked")
        return 0

    return asyncio.run(revoke())


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
