"""``semafore check-config``: validate the configuration without starting anything."""

from __future__ import annotations

import argparse
import sys

from semafore.cli.common import add_config_option, load_settings
from semafore.cli.preflight import check_settings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "check-config", help="validate the configuration without starting",
        description=(
            "Check that the configuration file parses, every key is known and in range, the "
            "data directory is writable, the TLS certificate and key are readable, match, are "
            "issued by the configured CA and are not expired. Prints 'configuration OK' or the "
            "first problem (naming the key) and exits 1."
        ),
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    for warning in check_settings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"configuration OK ({settings.source})")
    return 0
