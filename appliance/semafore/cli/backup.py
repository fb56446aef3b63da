"""``semafore backup --to FILE``: an online copy of the database, then an integrity check."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from semafore.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    CliError,
    add_config_option,
    load_settings,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "backup", help="copy the database online and check the copy's integrity",
        description=(
            "Copy the database with SQLite's online backup API (safe while `serve` runs), "
            "then run an integrity check on the copy. Exits 1 if the copy is not sound."
        ),
    )
    add_config_option(parser)
    parser.add_argument("--to", required=True, metavar="FILE", type=Path,
                        help="where to write the copy (must not exist)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semafore.storage.backup import backup_database

    settings = load_settings(args)
    source = settings.storage.database_path
    if not source.exists():
        raise CliError(f"storage.data_dir: no database at {source} (run `semafore init`)")
    if args.to.exists():
        raise CliError(f"--to: {args.to} already exists; choose a new file")
    report = asyncio.run(backup_database(source, args.to))
    print(
        f"backup: {report.path} ({report.size_bytes} bytes, schema version "
        f"{report.schema_version}, {report.seconds:.2f}s)"
    )
    if report.ok:
        print("integrity check: ok")
        return EXIT_OK
    print("integrity check: FAILED", file=sys.stderr)
    for problem in report.problems[:20]:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_FAILURE
