"""``semafore verify``: prove on the box that only ciphertext crosses and rests on the appliance.

Enrols two throwaway devices in the verification organisation (the codes stay in this process;
the local operator approves), exchanges messages through the live server over TLS with the
bundled client, checks both decrypt, then searches the database (with its WAL), the blob
directory and the logs for the plaintexts, the phone numbers and the tokens of the run. Cleans
up, records the run in the audit log, prints a report; exit 1 on any finding or failed step.
docs/verification.md explains how to read the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from semafore.cli.common import add_config_option, load_settings
from semafore.cli.verification_report import human_report
from semafore.cli.verification_run import verify_appliance


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify",
        help="prove that only ciphertext crosses and rests on this appliance",
        description=(
            "Enrol two throwaway devices, exchange messages through the running server with "
            "the bundled client, then search the database (including its WAL), the blob "
            "directory and the logs for the plaintexts, phone numbers and tokens used. "
            "Exit status 1 on any finding. Run it on the appliance host, as the service user."
        ),
    )
    add_config_option(parser)
    parser.add_argument("--server", help="URL of the running server (default: from the config)")
    parser.add_argument("--ca", type=Path, help="appliance CA certificate (default: from config)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--log-file",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="also search this log file (repeatable)",
    )
    parser.add_argument(
        "--journal-unit",
        default="semafore",
        metavar="UNIT",
        help="systemd unit whose journal is searched (default: semafore)",
    )
    parser.add_argument("--no-journal", action="store_true", help="do not search the journal")
    parser.add_argument(
        "--text",
        metavar="TEXT",
        help="send exactly this text (default: a random marker); searched for like the rest",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each delivery"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    report = asyncio.run(verify_appliance(settings, args))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(human_report(report))
    return 0 if report["passed"] else 1
