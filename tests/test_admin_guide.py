"""The admin API walk-through in docs/admin-guide.md works word for word: a real `semafore
serve` on a free port, curl over TLS, the bundled client, and the offline verifier."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.appliance import free_port

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "admin-guide.md"
HEADING = "## Walk-through: the admin API"


def walk_through() -> str:
    text = GUIDE.read_text("utf-8")
    assert HEADING in text, f"docs/admin-guide.md lost its section {HEADING!r}"
    section = text[text.index(HEADING):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no shell block in the admin API walk-through"
    return match.group(1)


@pytest.mark.slow
def test_the_admin_api_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = walk_through().replace("8443", str(free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMAFORE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "next step: totp_enrolment" in output and "otpauth://totp/" in output
    assert "10 recovery codes, shown once" in output
    assert '"status":"approved"' in output
    assert "[session_revoked]" in output and "refused: exit" in output
    events = re.findall(r"^\d+ \S+ (\S+) (device\.\w+) ", output, re.M)
    assert [e for _, e in events] == ["device.revoked", "device.approved", "device.registered"]
    assert events[0][0].startswith("token:") and events[1][0].startswith("token:")
    assert re.search(r"exported \d+ entries", output)
    assert '"ok":true' in output
    assert "token refused: exit 22" in output and "api_token_invalid" in output
    assert "session refused: exit 22" in output and "admin_session_expired" in output
    assert "audit log intact: 12 entries" in output
    assert "1 signed checkpoints verified" in output and "3 entries after it" in output
    assert "Traceback" not in output
    # Nothing secret reached the spool-free parts of the output: no phone number in the log.
    assert "+447700900002" not in (tmp_path / "audit.jsonl").read_text()
