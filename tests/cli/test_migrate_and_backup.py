"""``semafore migrate`` and ``semafore backup``."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from semafore.cli.main import main
from semafore.storage import latest_version
from support.appliance import Appliance


def test_migrate_reports_an_up_to_date_schema(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--config", str(appliance.config_path)]) == 0
    assert capsys.readouterr().out.strip() == f"schema version {latest_version()}: up to date"


def test_migrate_creates_and_migrates_a_missing_database(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    appliance.settings().storage.database_path.unlink()
    assert main(["migrate", "--config", str(appliance.config_path)]) == 0
    assert capsys.readouterr().out.strip() == f"schema version 0 -> {latest_version()}: migrated"


def test_migrate_refuses_a_newer_database(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    path = appliance.settings().storage.database_path
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {latest_version() + 1}")
    db.close()
    assert main(["migrate", "--config", str(appliance.config_path)]) == 1
    err = capsys.readouterr().err
    assert "newer" in err and "Traceback" not in err


def test_backup_writes_a_sound_private_copy(
    appliance: Appliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "backup.db"
    assert main(["backup", "--config", str(appliance.config_path), "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"backup: {target}" in out and "integrity check: ok" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    db.close()


def test_backup_refuses_an_existing_target(
    appliance: Appliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "backup.db"
    target.write_bytes(b"keep me")
    assert main(["backup", "--config", str(appliance.config_path), "--to", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == b"keep me"


def test_backup_while_serving(
    serve_process: object, appliance: Appliance, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "live.db"
    assert main(["backup", "--config", str(appliance.config_path), "--to", str(target)]) == 0
    assert "integrity check: ok" in capsys.readouterr().out
