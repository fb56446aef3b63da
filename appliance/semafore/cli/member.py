"""``semafore member add|import|list|rename|remove``: members of an organisation, by phone
number, with an optional display name."""

from __future__ import annotations

import argparse
from pathlib import Path

from semafore.cli.common import (
    CliError,
    add_actions,
    add_config_option,
    add_org_argument,
    add_user_argument,
)
from semafore.cli.identity_context import OPERATOR, iso_day, print_listing, run_with_identity
from semafore.services import IdentityServices, InvalidInput
from semafore.services.members import ImportReport


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_actions(
        subparsers, "member", help_text="add, import, list and remove members",
        description="Members of an organisation, identified by phone number (E.164).",
    )

    add = commands.add_parser("add", help="add one member")
    add_org_argument(add)
    add.add_argument("phone", metavar="+E164", help="phone number, e.g. +447700900123")
    add.add_argument("--admin", action="store_true", help="give the member the admin role")
    add.add_argument("--name", metavar="NAME", help="display name (1 to 64 characters)")
    add_config_option(add)
    add.set_defaults(func=run_add)

    imp = commands.add_parser(
        "import", help="add every number in a CSV file, or none",
        description="One number per row (first column), optional role in the second column "
        "(member or admin) and display name in the third; an optional header row starting "
        "with 'phone' names the columns (phone, role, display_name). Nothing is added "
        "unless every row is fine; the problems are listed by row.",
    )
    add_org_argument(imp)
    imp.add_argument("csv_file", metavar="FILE", type=Path, help="CSV file (UTF-8)")
    add_config_option(imp)
    imp.set_defaults(func=run_import)

    listing = commands.add_parser("list", help="list members")
    add_org_argument(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(listing)
    listing.set_defaults(func=run_list)

    rename = commands.add_parser(
        "rename", help="set or clear a member's display name",
    )
    add_org_argument(rename)
    add_user_argument(rename)
    rename.add_argument("name", metavar="NAME", nargs="?",
                        help="the new display name; leave out to clear it")
    add_config_option(rename)
    rename.set_defaults(func=run_rename)

    remove = commands.add_parser(
        "remove", help="remove a member (the account, its devices and keys cease to exist)"
    )
    add_org_argument(remove)
    add_user_argument(remove)
    add_config_option(remove)
    remove.set_defaults(func=run_remove)


def run_add(args: argparse.Namespace) -> int:
    member = run_with_identity(args, lambda identity: identity.members.add_member(
        args.org_id, args.phone, role="admin" if args.admin else "member",
        display_name=args.name, actor=OPERATOR,
    ))
    print(f"member {member.user_id} added ({member.role})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        text = args.csv_file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{args.csv_file}: cannot read ({getattr(exc, 'strerror', None) or exc})"
                       ) from None

    async def import_csv(identity: IdentityServices) -> ImportReport:
        try:
            return await identity.members.import_csv(args.org_id, text, actor=OPERATOR)
        except InvalidInput as exc:
            for row in exc.details.get("rows", []):  # type: ignore[union-attr]
                print(f"row {row['row']}: {row['status']} ({row['code']})")
            raise

    report = run_with_identity(args, import_csv)
    print(f"{report.added} members added")
    return 0


def run_list(args: argparse.Namespace) -> int:
    members = run_with_identity(
        args, lambda identity: identity.members.list_members(args.org_id)
    )
    print_listing(
        args.json,
        {"members": [
            {"user_id": m.user_id, "phone": m.phone, "display_name": m.display_name,
             "role": m.role,
             "joined": iso_day(m.joined_at), "last_active": m.last_active,
             "devices": m.device_count}
            for m in members
        ]},
        [(m.user_id, m.phone, m.display_name, m.role, iso_day(m.joined_at), m.last_active,
          m.device_count) for m in members],
        ("USER", "PHONE", "NAME", "ROLE", "JOINED", "LAST ACTIVE", "DEVICES"),
    )
    return 0


def run_rename(args: argparse.Namespace) -> int:
    member = run_with_identity(args, lambda identity: identity.members.set_display_name(
        args.org_id, args.user_id, args.name, actor=OPERATOR
    ))
    print(f"member {member.user_id} " + ("renamed" if member.display_name else "unnamed"))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    run_with_identity(
        args, lambda identity: identity.members.remove_member(
            args.org_id, args.user_id, actor=OPERATOR
        )
    )
    print(f"member {args.user_id} removed")
    return 0
