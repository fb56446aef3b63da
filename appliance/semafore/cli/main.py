"""Entry point of the ``semafore`` command.

Subcommands are modules with ``register(subparsers)``, listed in :data:`COMMAND_MODULES`; each
sets ``func`` (``run(args) -> int``). Exit codes: 0 success, 1 failure (one line on stderr, no
traceback), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from semafore import __version__
from semafore.cli import (
    admin,
    audit,
    backup,
    check_config,
    device,
    init,
    keys,
    member,
    migrate,
    org,
    renew_certificate,
    serve,
    verify,
)
from semafore.cli.common import EXIT_FAILURE, EXIT_USAGE, CliError
from semafore.errors import SemaforeError

COMMAND_MODULES: tuple[ModuleType, ...] = (
    init,
    serve,
    check_config,
    migrate,
    backup,
    renew_certificate,
    verify,
    org,
    member,
    device,
    keys,
    admin,
    audit,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semafore",
        description="SemaFore appliance: end-to-end-encrypted messaging server.",
    )
    parser.add_argument("--version", action="version", version=f"semafore {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, SemaforeError) as exc:
        print(f"semafore {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


__all__ = ["EXIT_USAGE", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
