"""``semafore audit verify|export|checkpoint`` and ``semafore admin reset-totp``: offline
verification of copied databases (every kind of tampering is caught and the first bad entry
named), JSON Lines export with filters, checkpoints on demand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from semafore.cli.main import main
from support import audit_tamper as tamper
from support.appliance import Appliance

ADMIN = "+447700900001"


def run(appliance: Appliance, *args: str) -> int:
    return main([*args, "--config", str(appliance.config_path)])


@pytest.fixture
def populated(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run(appliance, "org", "create", "Acme", "--admin-phone", ADMIN) == 0
    assert run(appliance, "org", "create", "Globex", "--admin-phone", "+447700900101") == 0
    capsys.readouterr()
    assert run(appliance, "org", "list", "--json") == 0
    orgs = json.loads(capsys.readouterr().out)["orgs"]
    acme = next(o["org_id"] for o in orgs if o["name"] == "Acme")
    for i in range(3):
        assert run(appliance, "member", "add", acme, f"+44770090020{i}") == 0
    capsys.readouterr()
    assert run(appliance, "audit", "checkpoint", "--json") == 0
    checkpoint = json.loads(capsys.readouterr().out)
    return {"org_id": acme, "checkpoint": checkpoint}


def copy_of(appliance: Appliance, tmp_path: Path, name: str = "copy.db") -> Path:
    return tamper.copy_database(appliance.settings().storage.database_path, tmp_path / name)


def verify(*args: str) -> int:
    return main(["audit", "verify", *args])


def test_checkpoint_prints_the_key(populated: dict[str, Any]) -> None:
    checkpoint = populated["checkpoint"]
    assert checkpoint["tree_size"] == 7  # 2 orgs with their first admins, 3 members
    assert len(checkpoint["public_key"]) == 64 and len(checkpoint["key_id"]) == 16


def test_an_intact_copy_verifies_offline_without_configuration(
    appliance: Appliance, populated: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = copy_of(appliance, tmp_path)
    monkeypatch.setenv("SEMAFORE_CONFIG", str(tmp_path / "does-not-exist.toml"))
    assert verify("--db", str(copy)) == 0
    out = capsys.readouterr().out
    assert "audit log intact: 7 entries" in out and "1 signed checkpoints verified" in out
    assert verify("--db", str(copy), "--json", "--trusted-key",
                  populated["checkpoint"]["key_id"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["latest_checkpoint"]["tree_size"] == 7


@pytest.mark.parametrize(("change", "first_bad"), [
    (tamper.edit(2), 2),
    (tamper.delete(3), 3),
    (tamper.insert(4), 4),
    (tamper.reorder(4, 5), 4),
    (tamper.rewrite_from(2), 7),  # consistent again, but the signed checkpoint disagrees
    (tamper.truncate_after(5), 6),
])
def test_tampered_copies_fail_and_name_the_first_bad_entry(
    appliance: Appliance, populated: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], change: Any, first_bad: int,
) -> None:
    copy = copy_of(appliance, tmp_path)
    with tamper.tampering(copy) as conn:
        change(conn)
    assert verify("--db", str(copy)) == 1
    out = capsys.readouterr().out
    assert out.startswith("audit log NOT intact") and f"(first bad entry: {first_bad})" in out


def test_a_tampered_checkpoint_signature_fails(
    appliance: Appliance, populated: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy = copy_of(appliance, tmp_path)
    with tamper.tampering(copy) as conn:
        tamper.flip_signature_bit(conn)
    assert verify("--db", str(copy), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "signature is not valid" in report["problem"]


def test_an_unknown_trusted_key_fails(
    appliance: Appliance, populated: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert verify("--db", str(copy_of(appliance, tmp_path)), "--trusted-key", "0" * 16) == 1
    assert "not a trusted key" in capsys.readouterr().out


def test_verify_reads_the_configured_database_by_default(
    appliance: Appliance, populated: dict[str, Any], capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(appliance, "audit", "verify") == 0
    assert "audit log intact" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["missing.db", "not-sqlite.db"])
def test_verify_explains_an_unusable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    if name == "not-sqlite.db":
        (tmp_path / name).write_text("hello")
    assert verify("--db", str(tmp_path / name)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "no such database file" in err or "not a SemaFore database" in err


def test_export_writes_json_lines(
    appliance: Appliance, populated: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(appliance, "audit", "export") == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, 8))
    assert "exported 7 entries" in captured.err
    assert ADMIN not in captured.out

    assert main(["audit", "export", "--db", str(copy_of(appliance, tmp_path)),
                 "--org", populated["org_id"], "--event", "member."]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and {e["event"] for e in lines} == {"member.added"}
    assert {e["org_id"] for e in lines} == {populated["org_id"]}

    assert run(appliance, "audit", "export", "--since", "2999-01-01") == 0
    assert capsys.readouterr().out == ""
    assert run(appliance, "audit", "export", "--since", "last tuesday") == 1
    assert "ISO 8601" in capsys.readouterr().err


def test_reset_totp(
    appliance: Appliance, populated: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(appliance, "member", "list", populated["org_id"], "--json") == 0
    members = json.loads(capsys.readouterr().out)["members"]
    admin = next(m for m in members if m["role"] == "admin")
    member = next(m for m in members if m["role"] == "member")
    assert run(appliance, "admin", "reset-totp", admin["user_id"]) == 0
    assert "next sign-in enrols a new authenticator" in capsys.readouterr().out
    assert run(appliance, "admin", "reset-totp", member["user_id"]) == 1
    assert "no admin with that id" in capsys.readouterr().err
    assert run(appliance, "audit", "export", "--event", "admin.second_factor_reset") == 0
    (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (entry["actor"], entry["target"]) == ("operator", f"member:{admin['user_id']}")
