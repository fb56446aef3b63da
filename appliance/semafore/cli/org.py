"""``semafore org create|list|set-limit``: organisations, for the operator on the box."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from datetime import UTC, datetime

from semafore.cli.common import add_config_option, load_settings
from semafore.cli.identity_context import OPERATOR, identity_services, print_json, print_table


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "org", help="create and list organisations, set member limits",
        description="Organisations: every account belongs to exactly one.",
    )
    commands = parser.add_subparsers(dest="org_command", metavar="ACTION", required=True)

    create = commands.add_parser(
        "create", help="create an organisation with its first admin",
        description="Create an organisation on the free plan (orgs.free_plan_member_limit "
        "members, unless --member-limit) with the given number as its first admin.",
    )
    create.add_argument("name", help="organisation name (1 to 100 characters)")
    create.add_argument("--admin-phone", required=True, metavar="+E164",
                        help="the first admin's phone number, e.g. +447700900123")
    create.add_argument("--member-limit", type=int, metavar="N", help="member limit")
    create.add_argument("--if-absent", action="store_true",
                        help="if an organisation of this name exists, change nothing and exit 0 "
                        "(for provisioning that runs again)")
    add_config_option(create)
    create.set_defaults(func=run_create)

    listing = commands.add_parser("list", help="list organisations")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(listing)
    listing.set_defaults(func=run_list)

    limit = commands.add_parser("set-limit", help="change an organisation's member limit")
    limit.add_argument("org_id", metavar="ORG", help="organisation id (o_...)")
    limit.add_argument("limit", type=int, metavar="N", help="new member limit")
    add_config_option(limit)
    limit.set_defaults(func=run_set_limit)


def run_create(args: argparse.Namespace) -> int:
    async def create() -> int:
        async with identity_services(load_settings(args)) as identity:
            create_org = (identity.orgs.create_org_if_absent if args.if_absent
                          else identity.orgs.create_org)
            org, admin = await create_org(
                args.name, args.admin_phone, actor=OPERATOR, member_limit=args.member_limit
            )
        if admin is None:
            print(f"organisation {org.org_id} exists: {org.name!r}, member limit "
                  f"{org.member_limit}, {org.member_count} members; nothing changed")
            return 0
        print(f"organisation {org.org_id} created: {org.name!r}, member limit {org.member_limit}")
        print(f"first admin: {admin.user_id}")
        return 0

    return asyncio.run(create())


def run_list(args: argparse.Namespace) -> int:
    async def listing() -> int:
        async with identity_services(load_settings(args)) as identity:
            orgs = await identity.orgs.list_orgs()
        if args.json:
            print_json({"orgs": [dataclasses.asdict(o) for o in orgs]})
        else:
            print_table(
                [(o.org_id, o.name, f"{o.member_count}/{o.member_limit}", _day(o.created_at))
                 for o in orgs],
                ("ORG", "NAME", "MEMBERS", "CREATED"),
            )
        return 0

    return asyncio.run(listing())


def run_set_limit(args: argparse.Namespace) -> int:
    async def set_limit() -> int:
        async with identity_services(load_settings(args)) as identity:
            org = await identity.orgs.set_member_limit(args.org_id, args.limit, actor=OPERATOR)
        print(f"organisation {org.org_id}: member limit {org.member_limit} "
              f"({org.member_count} members)")
        return 0

    return asyncio.run(set_limit())


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
