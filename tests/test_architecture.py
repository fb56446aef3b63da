"""The layer rules of ARCHITECTURE.md §3, as import-linter contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from support import toml

ROOT = Path(__file__).resolve().parents[1]


def importlinter_config(tmp_path: Path) -> Path:
    """pyproject's [tool.importlinter], runnable as is.

    Contracts that forbid external modules (asyncio, aiohttp, sqlite3) need
    ``include_external_packages``; it is set here if pyproject.toml does not set it.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = config.pop("contracts")
    config.setdefault("include_external_packages", True)
    lines = [toml.dumps({"tool.importlinter": config})]
    for contract in contracts:
        table = toml.dumps({"contract": contract})
        lines.append(table.replace("[contract]", "[[tool.importlinter.contracts]]", 1))
    path = tmp_path / "importlinter.toml"
    path.write_text("\n".join(lines))
    return path


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(importlinter_config(tmp_path)), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 broken" in output
    assert output.count("KEPT") == len(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    )
