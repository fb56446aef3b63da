"""`semafore verify` against a real `semafore serve` on a fresh `semafore init` install: passes
when only ciphertext is there, fails when a plaintext of the run sits in the database."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3

import pytest

from semafore.cli.verification_report import human_report
from semafore.services.verification import Needle, Scanner, ScanResult
from support.appliance import Appliance, ServeProcess, run_semafore


def verify(appliance: Appliance, served: ServeProcess, *extra: str):  # type: ignore[no-untyped-def]
    return run_semafore(
        "verify",
        "--config",
        str(appliance.config_path),
        "--server",
        served.url,
        "--no-journal",
        "--log-file",
        str(served.log_path),
        *extra,
        timeout=180,
    )


def audit_events(appliance: Appliance) -> list[str]:
    with sqlite3.connect(appliance.settings().storage.database_path) as db:
        return [row[0] for row in db.execute("SELECT event FROM audit_entries ORDER BY seq")]


@pytest.mark.slow
def test_passes_on_a_fresh_install(appliance: Appliance, serve_process: ServeProcess):
    result = verify(appliance, serve_process, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert report["findings"] == []
    assert all(step["ok"] for step in report["steps"])
    steps = [s["step"] for s in report["steps"]]
    assert "device 2 decrypts it" in steps and "device 1 decrypts the reply" in steps
    file_step = [s for s in report["steps"] if "file" in s["step"]]
    if not any(s.get("skipped") for s in file_step):  # once the file API is served
        assert "device 2 downloads and decrypts it" in steps
        blobs = [s for p in report["passes"].values() for s in p["scanned"] if s["kind"] == "blob"]
        assert any(s["bytes"] > 0 for s in blobs)
    kinds = {s["kind"] for p in report["passes"].values() for s in p["scanned"]}
    assert {"database", "wal", "log"} <= kinds
    searched = {n["kind"] for n in report["searched_for"]}
    assert searched == {"plaintext", "phone", "token"}
    assert "file content" in {n["label"] for n in report["searched_for"]}
    assert sum(n["kind"] == "token" for n in report["searched_for"]) >= 6
    # The report names what it searched for, never the values themselves.
    assert "+999" not in result.stdout and "semafore-verify " not in result.stdout
    # Clean-up: no throwaway member left; the audit log keeps the run.
    events = audit_events(appliance)
    assert "verification.ran" in events and "member.removed" in events

    again = verify(appliance, serve_process)  # human report; a second run reuses the org
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("SemaFore on-box verification: PASS")
    assert "findings        none" in again.stdout
    # Between runs the verification organisation keeps one account (the last admin), no device.
    with sqlite3.connect(appliance.settings().storage.database_path) as db:
        members, devices = db.execute(
            "SELECT count(DISTINCT m.user_id), count(d.device_id) FROM orgs o"
            " JOIN members m USING (org_id) LEFT JOIN devices d USING (user_id)"
            " WHERE o.name = 'SemaFore on-box verification'"
        ).fetchone()
    assert (members, devices) == (1, 0)


@pytest.mark.slow
def test_fails_when_a_plaintext_is_planted_in_the_database(
    appliance: Appliance, serve_process: ServeProcess
):
    canary = f"verify canary {secrets.token_hex(8)}"
    with sqlite3.connect(appliance.settings().storage.database_path) as db:
        db.execute(
            "INSERT INTO orgs (org_id, name, member_limit, created_at) VALUES (?, ?, 1, 0)",
            ("o_planted", canary),
        )
    result = verify(appliance, serve_process, "--json", "--text", canary)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is False
    found = {(f["needle"], f["encoding"]) for f in report["findings"]}
    assert ("message text 1", "raw") in found
    assert {f["kind"] for f in report["findings"]} == {"plaintext"}
    assert all(f["source"].startswith(str(appliance.data_dir)) for f in report["findings"])

    human = verify(appliance, serve_process, "--text", canary)
    assert human.returncode == 1
    assert "FAIL" in human.stdout.splitlines()[0]
    assert "FOUND message text 1 (raw) in" in human.stdout


# -- the search itself (no server needed) ----------------------------------------------------


def scan(data: bytes, needle: Needle, chunk: int = 1 << 20) -> list[tuple[str, int]]:
    result = ScanResult()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    Scanner([needle]).scan_stream("memory", "test", pieces, result)
    return [(f.encoding, f.offset) for f in result.findings]


SECRET = Needle("a token", "token", b"sfr_0123456789abcdefghijklmnopqrstuv")


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"xyz"])
@pytest.mark.parametrize(
    "encode, name",
    [
        (lambda b: b, "raw"),
        (lambda b: b.hex().encode(), "hex"),
        (lambda b: b.decode().encode("utf-16-le"), "utf-16le"),
        (lambda b: base64.b64encode(b), "base64"),
        (lambda b: base64.urlsafe_b64encode(b).rstrip(b"="), "base64url"),
    ],
)
def test_finds_a_secret_in_every_encoding_and_alignment(prefix, encode, name):  # type: ignore[no-untyped-def]
    stored = b"\x00" * 1000 + encode(prefix + SECRET.value) + b"\xff" * 1000
    found = scan(stored, SECRET)
    assert found, name
    # base64url of a value without "+" or "/" in its encoding is the same text as base64.
    accepted = {"base64", "base64url"} if name.startswith("base64") else {name}
    assert any(enc.split("/")[0] in accepted for enc, _ in found)


def test_finds_a_secret_cut_across_read_buffers():
    stored = b"a" * 4090 + SECRET.value + b"b" * 5000
    for chunk in (7, 4096, 4100):
        assert scan(stored, SECRET, chunk) == [("raw", 4090)]


def test_phone_numbers_are_also_searched_without_the_plus():
    phone = Needle("phone", "phone", b"+999123456789")
    assert scan(b"...999123456789...", phone) == [("digits", 3)]


def test_nothing_found_in_ciphertext():
    assert scan(os.urandom(200_000), SECRET) == []


# -- the human report (no server needed) ------------------------------------------------------


def test_human_report_layout():
    report = {
        "server": "https://appliance.example:8443",
        "steps": [
            {"step": "create throwaway accounts", "ok": True, "detail": ""},
            {"step": "file", "ok": True, "skipped": True,
             "detail": "not exchanged: this server has no file API"},
            {"step": "device 2 decrypts it", "ok": False, "detail": "timed out"},
        ],
        "searched_for": [
            {"label": "message text 1", "kind": "plaintext", "encodings": 9},
            {"label": "phone number of account 1", "kind": "phone", "encodings": 10},
            {"label": "device 1 access token (0)", "kind": "token", "encodings": 9},
            {"label": "device 1 refresh token (1)", "kind": "token", "encodings": 9},
        ],
        "passes": {
            "after_exchange": {"scanned": [
                {"kind": "database", "source": "/var/lib/semafore/semafore.db", "bytes": 4096},
                {"kind": "wal", "source": "/var/lib/semafore/semafore.db-wal", "bytes": 1000},
            ], "findings": []},
            "after_cleanup": {"scanned": [], "findings": []},
        },
        "findings": [{"needle": "message text 1", "encoding": "raw",
                      "source": "/var/lib/semafore/semafore.db", "offset": 123,
                      "pass": "after_exchange"}],
        "gaps": ["journal not searched: journalctl not found (pass --log-file or --no-journal)"],
        "passed": False,
    }
    assert human_report(report) == "\n".join([
        "SemaFore on-box verification: FAIL",
        "",
        "server          https://appliance.example:8443 (TLS 1.3, certificate checked against"
        " the appliance CA)",
        "  [ok  ] create throwaway accounts",
        "  [skip] file: not exchanged: this server has no file API",
        "  [FAIL] device 2 decrypts it: timed out",
        "",
        "searched for    1 phone(s), 1 plaintext(s), 2 token(s) in raw, UTF-16, hex and base64"
        " forms",
        "pass after_exchange 2 file(s)/stream(s), 5096 bytes",
        "    database  /var/lib/semafore/semafore.db (4096 bytes)",
        "    wal       /var/lib/semafore/semafore.db-wal (1000 bytes)",
        "pass after_cleanup  0 file(s)/stream(s), 0 bytes",
        "",
        "FINDINGS (1):",
        "  FOUND message text 1 (raw) in /var/lib/semafore/semafore.db at offset 123"
        " [after_exchange]",
        "gap             journal not searched: journalctl not found (pass --log-file or"
        " --no-journal)",
    ])
