"""``semafore device list|approve|reject|revoke``: devices of an organisation's members."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from semafore.cli.common import add_actions, add_config_option, add_org_argument, add_user_argument
from semafore.cli.identity_context import OPERATOR, iso_day, print_listing, run_with_identity
from semafore.protocol import b64u_encode
from semafore.services import DeviceService

DAY = 86_400


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_actions(
        subparsers, "device", help_text="list, approve, reject and revoke devices",
        description="Devices register themselves by phone OTP and wait for approval.",
    )

    listing = commands.add_parser("list", help="list devices (pending ones included)")
    add_org_argument(listing)
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
        add_org_argument(sub)
        add_user_argument(sub)
        sub.add_argument("device_id", metavar="DEVICE", type=int, help="device id (a number)")
        add_config_option(sub)
        sub.set_defaults(func=func)


def run_list(args: argparse.Namespace) -> int:
    devices = run_with_identity(args, lambda identity: identity.devices.list_devices(
        args.org_id, user_id=args.user, status="pending" if args.pending else None
    ))
    print_listing(
        args.json,
        {"devices": [
            {"user_id": d.user_id, "device_id": d.device_id, "name": d.device_name,
             "status": d.status,
             "registered": iso_day(d.registered_at),
             "last_active": None if d.last_active_day is None else iso_day(
                 d.last_active_day * DAY),
             "identity_key": b64u_encode(d.identity_key)}
            for d in devices
        ]},
        [(d.user_id, d.device_id, d.device_name, d.status, iso_day(d.registered_at),
          b64u_encode(d.identity_key)[:16]) for d in devices],
        ("USER", "DEVICE", "NAME", "STATUS", "REGISTERED", "IDENTITY KEY"),
    )
    return 0


def run_approve(args: argparse.Namespace) -> int:
    return _change_device(args, DeviceService.approve, "approved")


def run_reject(args: argparse.Namespace) -> int:
    return _change_device(args, DeviceService.reject, "rejected")


def run_revoke(args: argparse.Namespace) -> int:
    return _change_device(args, DeviceService.revoke, "revoked")


def _change_device(
    args: argparse.Namespace, change: Callable[..., Awaitable[object]], done: str
) -> int:
    """Apply ``change`` (a DeviceService method) to the device named by the arguments."""
    run_with_identity(args, lambda identity: change(
        identity.devices, args.org_id, args.user_id, args.device_id, actor=OPERATOR
    ))
    print(f"device {args.user_id}/{args.device_id} {done}")
    return 0
