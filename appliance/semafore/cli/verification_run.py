"""One ``semafore verify`` run, start to end: open the database, exchange through the live
server, search after the exchange and again after the clean-up, conclude and record the run in
the audit log. The result is the report, a JSON-able dict."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from semafore.cli.verification_exchange import Exchange
from semafore.cli.verification_search import search_pass
from semafore.cli.verification_steps import StepFailed
from semafore.config import Settings
from semafore.errors import SemaforeError
from semafore.services import SystemClock, build_identity_services
from semafore.services.verification import CapturingOtpProvider, Needle, VerificationAccounts
from semafore.storage import Database


def server_url(settings: Settings, override: str | None) -> str:
    if override:
        return override.rstrip("/")
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    return f"https://localhost:{settings.server.port}"


async def verify_appliance(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
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
    needles = [
        Needle(f"message text {i + 1}", "plaintext", t.encode()) for i, t in enumerate(texts)
    ]
    file_line = f"semafore-verify file {secrets.token_hex(12)}"
    needles.append(Needle("file content", "plaintext", file_line.encode()))
    exchange: Exchange | None = None
    try:
        clock = SystemClock()
        # Codes for the throwaway accounts stay in this process; the server's provider is
        # not used (and not weakened) by verification.
        otp = CapturingOtpProvider()
        identity = build_identity_services(settings, clock, database, provider=otp)
        accounts = VerificationAccounts(identity, database, clock, otp)
        with tempfile.TemporaryDirectory(prefix="semafore-verify-") as tmp:
            exchange = Exchange(report, accounts, url, ca, Path(tmp), args.timeout, needles)
            with contextlib.suppress(StepFailed):
                await exchange.run(texts, file_line)
            exchange.note_tokens()
            report["passes"]["after_exchange"] = search_pass(
                settings, needles + exchange.token_needles(), args, started, report
            )
            await exchange.delete_file_and_close()
            needles += exchange.token_needles()
            await exchange.clean_up()
            report["passes"]["after_cleanup"] = search_pass(
                settings, needles, args, started, report
            )
    finally:
        _conclude(report, needles)
        if exchange is not None and exchange.made is not None:
            await _record_run(report, exchange.accounts, exchange.made[0].org_id)
        await database.close()
    return report


def _conclude(report: dict[str, Any], needles: list[Needle]) -> None:
    """The findings of every pass, what was searched for (never the values), pass or fail."""
    findings = [{**f, "pass": name} for name, p in report["passes"].items() for f in p["findings"]]
    report["findings"] = findings
    report["searched_for"] = [
        {"label": n.label, "kind": n.kind, "encodings": len(n.forms())} for n in needles
    ]
    report["passed"] = not findings and all(s["ok"] for s in report["steps"])


async def _record_run(report: dict[str, Any], accounts: VerificationAccounts, org_id: str) -> None:
    try:
        await accounts.record_run(org_id, passed=report["passed"], findings=len(report["findings"]))
        report["audit"] = "verification.ran recorded in the audit log"
    except SemaforeError as exc:
        report["steps"].append({"step": "audit record", "ok": False, "detail": str(exc)})
        report["passed"] = False
