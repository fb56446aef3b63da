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
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from semafore.cli.common import add_config_option, load_settings
from semafore.client.errors import NotFound
from semafore.client.probe import (
    Probe,
    delete_file,
    enrol_probe,
    receive_file,
    receive_text,
    send_file,
)
from semafore.config import Settings
from semafore.errors import SemaforeError
from semafore.services import SystemClock, build_identity_services
from semafore.services.verification import (
    CapturingOtpProvider,
    Needle,
    Scanner,
    ScanResult,
    Throwaway,
    VerificationAccounts,
    database_files,
)
from semafore.storage import Database

T = TypeVar("T")


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


async def _verify(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    texts = (
        args.text or f"semafore-verify {secrets.token_hex(12)} first message",
        f"semafore-verify {secrets.token_hex(12)} reply",
    )
    url = server_url(settings, args.server)
    ca = args.ca or settings.resolve(settings.server.tls_ca_certificate)
    storage = settings.storage
    database = Database(
        storage.database_path, busy_timeout_ms=storage.busy_timeout_ms, reader_connections=1
    )
    await database.open(migrate=False)
    report: dict[str, Any] = {"server": url, "steps": [], "gaps": [], "passes": {}}
    probes: list[Probe] = []
    file_id: str | None = None
    accounts_made: tuple[Throwaway, Throwaway] | None = None
    needles = [
        Needle(f"message text {i + 1}", "plaintext", t.encode()) for i, t in enumerate(texts)
    ]
    file_line = f"semafore-verify file {secrets.token_hex(12)}"
    needles.append(Needle("file content", "plaintext", file_line.encode()))
    try:
        clock = SystemClock()
        # Codes for the throwaway accounts stay in this process; the server's provider is
        # not used (and not weakened) by verification.
        otp = CapturingOtpProvider()
        identity = build_identity_services(settings, clock, database, provider=otp)
        accounts = VerificationAccounts(identity, database, clock, otp)
        with tempfile.TemporaryDirectory(prefix="semafore-verify-") as tmp:
            try:
                accounts_made = await _step(report, "create throwaway accounts", accounts.prepare())
                for i, account in enumerate(accounts_made, start=1):
                    needles.append(
                        Needle(f"phone number of account {i}", "phone", account.phone.encode())
                    )
                    probe = await _step(
                        report,
                        f"enrol and approve device {i} over TLS",
                        enrol_probe(
                            f"device {i}",
                            Path(tmp) / f"device{i}",
                            url,
                            ca,
                            account.phone,
                            _issuer(accounts, account),
                            _approver(accounts, account),
                        ),
                    )
                    probes.append(probe)
                a, b = probes
                await _step(
                    report,
                    "device 1 sends a text to device 2",
                    a.device.send_text(accounts_made[1].user_id, texts[0]),
                )
                await _step(report, "device 2 decrypts it", receive_text(b, texts[0], args.timeout))
                await _step(
                    report,
                    "device 2 replies",
                    b.device.send_text(accounts_made[0].user_id, texts[1]),
                )
                await _step(
                    report, "device 1 decrypts the reply", receive_text(a, texts[1], args.timeout)
                )
                content = (file_line + "\n").encode() * FILE_LINES
                source = Path(tmp) / "verification-file.txt"
                source.write_bytes(content)
                sent = await _send_file(report, a, accounts_made[1].user_id, source, len(content))
                if sent is not None:
                    mid, file_id = sent
                    await _receive_file(
                        report, b, mid, content, Path(tmp) / "received", args.timeout
                    )
            except _StepFailed:
                pass
            for probe in probes:
                probe.note_tokens()
            report["passes"]["after_exchange"] = _scan(
                settings, needles + _token_needles(probes), args, started, report
            )
            if file_id is not None:  # the uploader removes its file instead of waiting for expiry
                with contextlib.suppress(_StepFailed):
                    await _step(
                        report, "device 1 deletes the file", delete_file(probes[0], file_id)
                    )
            for probe in probes:
                await probe.close()
            needles += _token_needles(probes)
            if accounts_made is not None:
                with contextlib.suppress(_StepFailed):
                    await _step(
                        report,
                        "clean up (member removed, devices revoked)",
                        accounts.clean_up(*accounts_made),
                    )
            report["passes"]["after_cleanup"] = _scan(settings, needles, args, started, report)
    finally:
        findings = [
            {**f, "pass": name} for name, p in report["passes"].items() for f in p["findings"]
        ]
        report["findings"] = findings
        report["searched_for"] = [
            {"label": n.label, "kind": n.kind, "encodings": len(n.forms())} for n in needles
        ]
        report["passed"] = not findings and all(s["ok"] for s in report["steps"])
        if accounts_made is not None:
            try:
                await accounts.record_run(
                    accounts_made[0].org_id, passed=report["passed"], findings=len(findings)
                )
                report["audit"] = "verification.ran recorded in the audit log"
            except SemaforeError as exc:
                report["steps"].append({"step": "audit record", "ok": False, "detail": str(exc)})
                report["passed"] = False
        await database.close()
    return report


class _StepFailed(Exception):
    pass


def _token_needles(probes: list[Probe]) -> list[Needle]:
    return [
        Needle(f"{probe.name} {label}", "token", value.encode())
        for probe in probes
        for label, value in probe.tokens.items()
    ]


FILE_LINES = 4000  # about 200 KB: several encrypted chunks


async def _send_file(
    report: dict[str, Any], a: Probe, to_user: str, source: Path, size: int
) -> tuple[str, str] | None:
    """Device 1 sends `source` to device 2: (message id, file id), or None without a file API."""
    try:
        sent = await send_file(a, to_user, source)
    except NotFound:
        report["steps"].append(
            {
                "step": "file",
                "ok": True,
                "skipped": True,
                "detail": "not exchanged: this server has no file API",
            }
        )
        return None
    except (SemaforeError, OSError) as exc:
        report["steps"].append({"step": "device 1 sends a file", "ok": False, "detail": str(exc)})
        raise _StepFailed from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(source)
    report["steps"].append(
        {"step": f"device 1 sends a file ({size} bytes)", "ok": True, "detail": ""}
    )
    return sent


async def _receive_file(
    report: dict[str, Any], b: Probe, mid: str, content: bytes, out: Path, wait_seconds: float
) -> None:
    os.mkdir(out, 0o700)
    try:
        got = await _step(
            report, "device 2 downloads and decrypts it", receive_file(b, mid, out, wait_seconds)
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if got != content:
        report["steps"].append(
            {"step": "the file is byte-identical", "ok": False, "detail": "content differs"}
        )
        raise _StepFailed


async def _step(report: dict[str, Any], name: str, work: Awaitable[T]) -> T:
    try:
        result = await work
    except (SemaforeError, OSError) as exc:
        report["steps"].append({"step": name, "ok": False, "detail": str(exc)})
        raise _StepFailed from None
    report["steps"].append({"step": name, "ok": True, "detail": ""})
    return result


def _issuer(accounts: VerificationAccounts, account: Throwaway) -> Callable[[], Awaitable[str]]:
    return lambda: accounts.issue_code(account)


def _approver(
    accounts: VerificationAccounts, account: Throwaway
) -> Callable[[int], Awaitable[None]]:
    return lambda device_id: accounts.approve(account, device_id)


def _scan(
    settings: Settings,
    needles: list[Needle],
    args: argparse.Namespace,
    started: float,
    report: dict[str, Any],
) -> dict[str, Any]:
    scanner = Scanner(needles)
    result = ScanResult()
    for path, kind in database_files(settings.storage.database_path):
        scanner.scan_file(path, kind, result)
    scanner.scan_tree(settings.storage.blob_dir, "blob", result)
    sources, gaps = _logs(args, started)
    for name, data in sources:
        scanner.scan_stream(name, "log", [data], result)
    for gap in gaps:
        if gap not in report["gaps"]:
            report["gaps"].append(gap)
    return result.to_json()


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
            gaps.append(
                "journal not searched: journalctl not found (pass --log-file or --no-journal)"
            )
        else:
            proc = subprocess.run(
                [
                    journalctl,
                    "--unit",
                    args.journal_unit,
                    "--since",
                    f"@{int(started) - 1}",
                    "--output",
                    "cat",
                    "--no-pager",
                    "--quiet",
                ],
                capture_output=True,
                timeout=120,
                check=False,
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
    lines.append(
        f"server          {report['server']} (TLS 1.3, certificate checked against the"
        " appliance CA)"
    )
    for step in report["steps"]:
        mark = "skip" if step.get("skipped") else "ok  " if step["ok"] else "FAIL"
        lines.append(
            f"  [{mark}] {step['step']}" + (f": {step['detail']}" if step["detail"] else "")
        )
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
