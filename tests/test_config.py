"""The strict settings loader, and docs/configuration.md against the settings classes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from semafore.cli.main import main
from semafore.config import (
    SECTIONS,
    ConfigError,
    Settings,
    documented_keys,
    load_settings,
    settings_from_dict,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
KEY = re.compile(r"`([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)`")


def doc_rows() -> dict[str, list[str]]:
    """``section.key`` -> the cells of its table row (or [] when named in a heading)."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            match = KEY.fullmatch(cells[0]) if cells else None
            if match:
                rows[match.group(1)] = cells
        elif line.startswith("#"):
            for match in KEY.finditer(line):
                rows.setdefault(match.group(1), [])
    return rows


def toml_literal(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else json.dumps(value)
    return str(value)


def defaults() -> dict[str, Any]:
    found = {}
    for name, cls in SECTIONS.items():
        instance = cls()
        for f in dataclasses.fields(cls):
            found[f"{name}.{f.name}"] = getattr(instance, f.name)
    return found


def test_every_setting_is_documented() -> None:
    missing = set(documented_keys()) - set(doc_rows())
    assert not missing, f"add these to docs/configuration.md: {sorted(missing)}"


def test_every_documented_setting_exists() -> None:
    unknown = set(doc_rows()) - set(documented_keys())
    assert not unknown, f"docs/configuration.md documents unknown keys: {sorted(unknown)}"


def test_documented_defaults_match_the_code() -> None:
    wrong = {}
    for key, value in defaults().items():
        cells = doc_rows().get(key, [])
        if len(cells) < 3:
            continue  # documented in prose under a heading
        cell = cells[2].replace("`", "").strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                ok = float(cell.replace("_", "")) == float(value)
            except ValueError:
                ok = False
        else:
            ok = cell == toml_literal(value)
        if not ok:
            wrong[key] = (cell, toml_literal(value))
    assert not wrong, f"documented default != code default: {wrong}"


def test_defaults_load_from_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "semafore.toml"
    path.write_text("")
    settings = load_settings(path)
    assert settings.server.port == 8443
    assert settings.metrics.token_file is None
    assert settings.source == path


def test_relative_data_dir_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "semafore.toml"
    path.write_text('[storage]\ndata_dir = "../data"\n')
    settings = load_settings(path)
    assert settings.storage.data_dir == (tmp_path / "data").resolve()
    assert settings.resolve(Path("tls/x.crt")) == settings.storage.data_dir / "tls/x.crt"
    assert settings.resolve(Path("/abs/x.crt")) == Path("/abs/x.crt")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bogus": {}}, "bogus: unknown section"),
        ({"server": 5}, "server: must be a table"),
        ({"server": {"colour": "red"}}, "server.colour: unknown setting"),
        ({"server": {"port": "8443"}}, "server.port: must be an integer"),
        ({"server": {"port": True}}, "server.port: must be an integer"),
        ({"server": {"port": 0}}, "server.port: must be between"),
        ({"server": {"max_request_bytes": 10}}, "server.max_request_bytes: must be between"),
        ({"server": {"shutdown_timeout_seconds": "soon"}}, "server.shutdown_timeout_seconds"),
        ({"server": {"public_url": "http://x"}}, "server.public_url: must start with https://"),
        ({"server": {"tls_certificate": ""}}, "server.tls_certificate: must be a non-empty"),
        ({"storage": {"reader_connections": 0}}, "storage.reader_connections"),
        ({"logging": {"level": "loud"}}, "logging.level: must be one of"),
        ({"logging": {"access_log": "yes"}}, "logging.access_log: must be true or false"),
        ({"metrics": {"token_file": 7}}, "metrics.token_file"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data)
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml")


def test_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "semafore.toml"
    path.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_cli_exits_1_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "semafore.toml"
    path.write_text("[server]\nport = 99999\n")
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("semafore check-config: error: server.port: must be between")
    assert len(err.strip().splitlines()) == 1
