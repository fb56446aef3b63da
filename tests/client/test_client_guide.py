"""The walk-through in docs/client.md works word for word (on a free port)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.appliance import free_port

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "client.md"


def walk_through() -> str:
    text = GUIDE.read_text("utf-8")
    section = text[text.index("## Walk-through") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no shell block in the walk-through"
    return match.group(1)


@pytest.mark.slow
def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = walk_through().replace("8443", str(free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMAFORE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert len(re.findall(r"status: approved", output)) == 2
    assert re.search(r"\] Hello Bob", output) and '"body": "Hi Alice"' in output
    assert re.search(r"in team\] Hello team", output)
    assert re.search(r"(\d{5} ){11}\d{5}", output) and "verified" in output
    assert "the file arrived intact" in output
    assert "Traceback" not in output and "error" not in output
