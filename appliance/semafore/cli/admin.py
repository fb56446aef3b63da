"""``semafore admin reset-totp MEMBER``: the operator's way back in for an admin who lost
their authenticator and recovery codes."""

from __future__ import annotations

import argparse
import asyncio

from semafore.cli.admin_context import admin_services
from semafore.cli.common import EXIT_OK, add_actions, add_config_option, load_settings
from semafore.cli.identity_context import OPERATOR


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_actions(
        subparsers, "admin", help_text="admin sign-in: reset an admin's second factor",
        description="Admins sign in with a phone code and a TOTP authenticator "
        "(docs/admin-guide.md).",
    )
    reset = commands.add_parser(
        "reset-totp", help="forget an admin's authenticator and recovery codes",
        description="Forget the admin's TOTP secret and recovery codes and end their sessions. "
        "Their next sign-in (phone code) enrols a new authenticator. Audited as "
        "admin.second_factor_reset.",
    )
    reset.add_argument("member_id", metavar="MEMBER", help="the admin's member id (u_...)")
    add_config_option(reset)
    reset.set_defaults(func=run_reset_totp)


def run_reset_totp(args: argparse.Namespace) -> int:
    async def reset() -> int:
        async with admin_services(load_settings(args)) as admin:
            await admin.admin_auth.reset_second_factor(args.member_id, actor=OPERATOR)
        print(f"admin {args.member_id}: authenticator and recovery codes forgotten, sessions "
              "ended; the next sign-in enrols a new authenticator")
        return EXIT_OK

    return asyncio.run(reset())
