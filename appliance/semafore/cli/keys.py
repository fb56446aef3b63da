"""``semafore keys rotate-jwt``: start signing access tokens with a new key."""

from __future__ import annotations

import argparse
import asyncio

from semafore.cli.common import add_actions, add_config_option, load_settings
from semafore.cli.identity_context import OPERATOR, identity_services


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_actions(
        subparsers, "keys", help_text="rotate the appliance's own keys",
        description="The appliance's own keys live under <data_dir>/keys/ (0600).",
    )
    rotate = commands.add_parser(
        "rotate-jwt", help="sign new access tokens with a fresh key",
        description="Create a new Ed25519 signing key for access tokens. Tokens signed by the "
        "previous key stay valid for auth.jwt_key_overlap_seconds; a running server picks the "
        "new key up by itself.",
    )
    add_config_option(rotate)
    rotate.set_defaults(func=run_rotate_jwt)


def run_rotate_jwt(args: argparse.Namespace) -> int:
    async def rotate() -> int:
        settings = load_settings(args)
        async with identity_services(settings) as identity:
            kid = await identity.sessions.rotate_signing_key(actor=OPERATOR)
        print(f"new access-token signing key {kid}; the previous key is accepted for "
              f"{settings.auth.jwt_key_overlap_seconds} more seconds")
        return 0

    return asyncio.run(rotate())
