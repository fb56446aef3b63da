"""``semafore audit verify|export|checkpoint``: the audit log, for the operator on the box.

``verify --db FILE`` checks a *copy* of the database offline: no server, no configuration, no
secret keys; the checkpoint public keys are read from the copy (pin yours with
``--trusted-key``). It names the first bad entry and exits 1 when the log was tampered with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from semafore.cli.admin_context import admin_services
from semafore.cli.common import EXIT_FAILURE, EXIT_OK, add_actions, add_config_option, load_settings
from semafore.cli.identity_context import print_json
from semafore.services.audit import entry_dict, parse_filter, verify_connection
from semafore.storage import audit as audit_store
from semafore.storage.audit_chain import VerifyReport, checkpoint_dict


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_actions(
        subparsers, "audit", help_text="verify, export and checkpoint the audit log",
        description="The audit log: an append-only hash chain of platform events with signed "
        "checkpoints (docs/audit.md).",
    )

    verify = commands.add_parser(
        "verify", help="check the hash chain and the signed checkpoints",
        description="Check every entry's hash and link and every checkpoint's signature. With "
        "--db, a copied database file is checked offline (no configuration, no server). Exit "
        "status 0 when intact, 1 naming the first bad entry otherwise.",
    )
    verify.add_argument("--db", metavar="FILE", type=Path,
                        help="database file to check (a copy); default: the configured one")
    verify.add_argument("--trusted-key", metavar="KEY_ID", action="append", default=None,
                        help="accept only checkpoints signed by this key id (repeatable); "
                        "`semafore audit checkpoint` prints the appliance's key id")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_config_option(verify)
    verify.set_defaults(func=run_verify)

    export = commands.add_parser(
        "export", help="write audit entries as JSON Lines on stdout",
        description="One JSON object per line, oldest first: seq, at, at_ms, org_id, actor, "
        "event, target, data, prev_hash, hash.",
    )
    export.add_argument("--db", metavar="FILE", type=Path,
                        help="database file to read (a copy); default: the configured one")
    export.add_argument("--org", metavar="ORG", help="only this organisation's entries")
    export.add_argument("--since", metavar="WHEN", help="ISO 8601 date or date-time (UTC)")
    export.add_argument("--until", metavar="WHEN", help="ISO 8601 date or date-time, exclusive")
    export.add_argument("--event", metavar="NAME", help="event name, or a prefix ending in '.'")
    add_config_option(export)
    export.set_defaults(func=run_export)

    checkpoint = commands.add_parser(
        "checkpoint", help="sign a checkpoint of the audit log now",
        description="Sign (tree size, head hash) with the appliance's audit key and store it; "
        "prints the checkpoint, the key id and the public key.",
    )
    checkpoint.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(checkpoint)
    checkpoint.set_defaults(func=run_checkpoint)


def _database_file(args: argparse.Namespace) -> Path:
    return args.db if args.db is not None else load_settings(args).storage.database_path


def run_verify(args: argparse.Namespace) -> int:
    async def verify() -> VerifyReport:
        conn = await audit_store.open_copy(_database_file(args))
        try:
            trusted = set(args.trusted_key) if args.trusted_key else None
            return await verify_connection(conn, trusted_key_ids=trusted)
        finally:
            await conn.close()

    report = asyncio.run(verify())
    if args.json:
        print_json(report.as_dict())
    else:
        print(_describe(report))
    return EXIT_OK if report.ok else EXIT_FAILURE


def _describe(report: VerifyReport) -> str:
    cp = report.latest_checkpoint
    if not report.ok:
        where = f" (first bad entry: {report.first_bad_seq})" if report.first_bad_seq else ""
        return f"audit log NOT intact{where}: {report.problem}"
    lines = [f"audit log intact: {report.entries} entries, head {report.head_hash.hex()}",
             f"{report.checkpoints} signed checkpoints verified"]
    if cp is None:
        lines.append("no checkpoint yet: sign one with `semafore audit checkpoint`")
    else:
        lines.append(f"latest checkpoint {cp.id}: {cp.tree_size} entries at {_when(cp.at_ms)}, "
                     f"key {cp.key_id}")
        if cp.tree_size < report.entries:
            lines.append(f"{report.entries - cp.tree_size} entries after it are covered by the "
                         "chain only")
    return "\n".join(lines)


def _when(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_export(args: argparse.Namespace) -> int:
    flt = parse_filter(args.org, all_orgs=args.org is None, event=args.event, since=args.since,
                       until=args.until)

    async def export() -> int:
        conn = await audit_store.open_copy(_database_file(args))
        count = 0
        try:
            async for entry in audit_store.iter_entries(conn, flt):
                sys.stdout.write(json.dumps(entry_dict(entry), separators=(",", ":"),
                                            sort_keys=True) + "\n")
                count += 1
        finally:
            await conn.close()
        sys.stdout.flush()
        print(f"exported {count} entries", file=sys.stderr)
        return EXIT_OK

    return asyncio.run(export())


def run_checkpoint(args: argparse.Namespace) -> int:
    async def sign() -> dict[str, Any]:
        async with admin_services(load_settings(args)) as admin:
            checkpoint = await admin.audit.checkpoint()
            public_key = admin.audit.public_key
        assert checkpoint is not None
        return {**checkpoint_dict(checkpoint), "public_key": public_key.hex()}

    body = asyncio.run(sign())
    if args.json:
        print_json(body)
    else:
        print(f"checkpoint {body['id']} signed: {body['tree_size']} entries, head "
              f"{body['head_hash']}")
        print(f"key id {body['key_id']}, public key {body['public_key']}")
    return EXIT_OK
