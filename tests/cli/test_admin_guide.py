"""The walk-through in docs/admin-guide.md works word for word (on a free port)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.appliance import free_port

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "admin-guide.md"


def walk_through() -> str:
    text = GUIDE.read_text("utf-8")
    section = text[text.index("## Walk-through"):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no shell block in the walk-through"
    return match.group(1)


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = walk_through().replace("8443", str(free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMAFORE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"device u_[0-9a-f]+/1: pending", output)
    assert "status: approved" in output and "phone=+447700900002" in output
    assert "[session_revoked]" in output and "refused: exit" in output
    assert "audit log intact: 6 entries" in output
    assert "Traceback" not in output
