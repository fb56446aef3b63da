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
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from semafore.cli.common import add_config_option, load_settings
from semafore.cli.verify_run import VerificationRun
from semafore.config import Settings


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
        "--log-file", action="append", type=Path, default=[], metavar="PATH",
        help="also search this log file (repeatable)",
    )
    parser.add_argument(
        "--journal-unit", default="semafore", metavar="UNIT",
        help="systemd unit whose journal is searched (default: semafore)",
    )
    parser.add_argument("--no-journal", action="store_true", help="do not search the journal")
    parser.add_argument(
        "--text", metavar="TEXT",
        help="send exactly this text (default: a random marker); searched for like the rest",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each delivery"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    report = asyncio.run(_verify(settings, args))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(human_report(report))
    return 0 if report["passed"] else 1


def server_url(settings: Settings, override: str | None) -> str:
    if override:
        return override.rstrip("/")
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    return f"https://localhost:{settings.server.port}"


async def _verify(settings: Settings, args: argparse.Namespace) -> dict:
    started = time.time()
    texts = (
        args.text or f"semafore-verify {secrets.token_hex(12)} first message",
        f"semafore-verify {secrets.token_hex(12)} reply",
    )
    with tempfile.TemporaryDirectory(prefix="semafore-verify-") as tmp:
        run_ = VerificationRun(
            settings,
            server_url(settings, args.server),
            args.ca or settings.resolve(settings.server.tls_ca_certificate),
            Path(tmp),
            timeout=args.timeout,
        )
        report = await run_.execute(texts, lambda: _logs(args, started))
    report["started_at"] = int(started)
    report["finished_at"] = int(time.time())
    return report


def _logs(args: argparse.Namespace, started: float) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(source name, bytes) of every log to search, and the gaps in that coverage."""
    sources: list[tuple[str, bytes]] = []
    gaps: list[str] = []
    for path in args.log_file:
        try:
            sources.append((str(path), path.read_bytes()))
        except OSError as exc:
            gaps.append(f"log file {path} not searched: {exc.strerror}")
    if not args.no_journal:
        journalctl = shutil.which("journalctl")
        if journalctl is None:
            gaps.append("journal not searched: journalctl not found (pass --log-file or --no-journal)")
        else:
            proc = subprocess.run(
                [journalctl, "--unit", args.journal_unit, "--since", f"@{int(started) - 1}",
                 "--output", "cat", "--no-pager", "--quiet"],
                capture_output=True, timeout=120, check=False,
            )
            if proc.returncode != 0:
                gaps.append(f"journal not searched: journalctl exited {proc.returncode}")
            elif not proc.stdout:
                gaps.append(f"journal of unit {args.journal_unit} has no entries for this run")
            else:
                sources.append((f"journal:{args.journal_unit}", proc.stdout))
    return sources, gaps


def human_report(report: dict) -> str:
    lines = [f"SemaFore on-box verification: {'PASS' if report['passed'] else 'FAIL'}", ""]
    lines.append(f"server          {report['server']}")
    for step in report["steps"]:
        mark = "ok  " if step["ok"] else "FAIL"
        lines.append(f"  [{mark}] {step['step']}" + (f": {step['detail']}" if step["detail"] else ""))
    searched = report["searched_for"]
    kinds: dict[str, int] = {}
    for item in searched:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    lines.append("")
    lines.append(
        "searched for    "
        + ", ".join(f"{n} {kind}(s)" for kind, n in sorted(kinds.items()))
        + " in raw, UTF-16, hex and base64 forms"
    )
    for name, scan in report["passes"].items():
        total = sum(s["bytes"] for s in scan["scanned"])
        lines.append(f"pass {name:<14} {len(scan['scanned'])} file(s)/stream(s), {total} bytes")
        for s in scan["scanned"]:
            lines.append(f"    {s['kind']:<9} {s['source']} ({s['bytes']} bytes)")
    lines.append("")
    if report["findings"]:
        lines.append(f"FINDINGS ({len(report['findings'])}):")
        for f in report["findings"]:
            lines.append(
                f"  FOUND {f['needle']} ({f['encoding']}) in {f['source']} at offset {f['offset']}"
                f" [{f['pass']}]"
            )
    else:
        lines.append("findings        none")
    for gap in report["gaps"]:
        lines.append(f"gap             {gap}")
    return "\n".join(lines)
