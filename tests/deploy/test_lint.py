"""ansible-lint (production profile) and yamllint over the roles, playbooks and inventories.

Not marked ``deploy``: it needs no root and no hosts, so it runs on every test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hosts import REPO, VENV_BIN


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[deploy]')")
    return found


def lint_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1", ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.mark.timeout(300)
def test_yamllint_is_clean():
    result = subprocess.run(
        [tool("yamllint"), "--strict", "--format", "parsable", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=lint_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(600)
def test_ansible_lint_production_profile_is_clean():
    result = subprocess.run(
        [
            tool("ansible-lint"),
            "--offline",
            "--profile",
            "production",
            "--strict",
            "--nocolor",
            "roles",
            "playbooks",
            "inventory",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=lint_env(),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-10000:]
    assert "Profile 'production' was required, and it passed" in output, output[-10000:]
