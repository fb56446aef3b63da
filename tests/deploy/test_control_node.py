"""The control node's Ansible: the bundle carries ansible-core 2.19, and the playbooks refuse
any other version before they touch a host.

Not marked ``deploy``: it needs no root and no hosts. Building the bundle downloads wheels
from PyPI (or the index in ``semafore_bundle_pip_args``), as the build machine does.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import hosts
import pytest
import yaml

PLAYBOOKS = hosts.REPO / "playbooks"
CHECK = "control-node.yml"
VERSION_CHECK_FAILED = "These playbooks need ansible-core 2.19; this control node runs ansible-core"

# ansible-playbook as a control node of another ansible-core version would run it: the version
# the playbooks see (ansible_version) is the one ansible.release reports.
AS_VERSION = """\
import sys
import ansible.release
ansible.release.__version__ = sys.argv.pop(1)
sys.argv[0] = "ansible-playbook"
from ansible.cli.playbook import main
main()
"""


def host_playbooks() -> list[str]:
    """Every playbook with a play for hosts other than the control node itself."""
    names = []
    for path in sorted(PLAYBOOKS.glob("*.yml")):
        plays = yaml.safe_load(path.read_text())
        if path.name != CHECK and any(
            play.get("hosts", "localhost") != "localhost" for play in plays
        ):
            names.append(path.name)
    return names


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Path:
    """Two appliance hosts that nothing can reach (port 9 on the loopback): a play that got
    past the version check would fail as unreachable instead of changing anything."""
    path = tmp_path_factory.mktemp("control-node") / "hosts.yml"
    unreachable = {"ansible_host": "127.0.0.1", "ansible_port": 9}
    path.write_text(
        yaml.safe_dump(
            {"semafore": {"hosts": {"a.invalid": unreachable, "b.invalid": unreachable}}}
        )
    )
    return path


def playbook_as(version: str, inventory: Path, name: str) -> subprocess.CompletedProcess:
    return hosts.run(
        [
            str(hosts.VENV_BIN / "python"),
            "-c",
            AS_VERSION,
            version,
            "-i",
            str(inventory),
            str(PLAYBOOKS / name),
        ],
        check=False,
        timeout=300,
        env=hosts.ansible_env(hosts.REPO / "ansible.cfg"),
        cwd=hosts.REPO,
    )


def test_every_host_playbook_checks_the_control_node_first():
    names = host_playbooks()
    assert {"site.yml", "upgrade.yml", "verify.yml"} <= set(names), names
    for name in names:
        first = yaml.safe_load((PLAYBOOKS / name).read_text())[0]
        assert first.get("ansible.builtin.import_playbook") == CHECK, name


@pytest.mark.parametrize("name", host_playbooks())
def test_debian_ansible_core_is_refused_before_any_host_task(inventory, name):
    result = playbook_as("2.14.18", inventory, name)  # what Debian 12's apt installs
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert f"{VERSION_CHECK_FAILED} 2.14.18. Install 2.19 from the bundle" in output, output[-4000:]
    assert output.count("PLAY [") == 1, output[-4000:]  # only the check's play ran
    assert "unreachable=1" not in output, output[-4000:]


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("2.18.6", False),
        ("2.20.0", False),
        ("2.20.0.dev0", False),
        ("2.19.0", True),
        ("2.19.0rc1", True),
        ("2.19.14", True),
    ],
)
def test_only_ansible_core_2_19_passes_the_check(inventory, version, accepted):
    result = playbook_as(version, inventory, CHECK)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) is accepted, output[-4000:]
    assert (VERSION_CHECK_FAILED in output) is not accepted, output[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bundle_control_node_wheelhouse_installs_ansible_core_2_19(bundle, inventory, tmp_path):
    control = bundle.root / "control-node"
    files = sorted(p.relative_to(bundle.root).as_posix() for p in control.rglob("*") if p.is_file())
    assert any(re.fullmatch(r"control-node/ansible_core-2\.19\.\d+-.*\.whl", f) for f in files), (
        files
    )

    # Covered like the rest of the bundle: manifest, archive (and so its signature), lock, SBOM.
    manifest = (bundle.root / "SHA256SUMS").read_text().splitlines()
    assert set(files) <= {line.split("  ", 1)[1] for line in manifest}, manifest
    hosts.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=bundle.root)
    # The archive is what is signed (bundle.yml checks its signature as the site will).
    archived = hosts.run(["tar", "-tzf", str(bundle.archive)]).stdout.splitlines()
    assert {f"semafore-{bundle.version}/{f}" for f in files} <= set(archived)
    wheels = {f.removeprefix("control-node/") for f in files if f.endswith(".whl")}
    lock = (control / "requirements.lock").read_text()
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", lock)) == len(wheels), lock
    sbom = yaml.safe_load((control / "sbom.cdx.json").read_text())
    assert sbom["metadata"]["component"]["name"] == "ansible-core"
    listed = {sbom["metadata"]["component"]["properties"][0]["value"]} | {
        c["properties"][0]["value"] for c in sbom["components"]
    }
    assert listed == wheels

    # What the site does on its control node: no index, nothing but the bundle.
    venv = tmp_path / "ansible"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    hosts.offline_venv(venv, control, "ansible-core", env=env)
    version = hosts.run([str(venv / "bin" / "ansible"), "--version"], env=env).stdout
    assert re.match(r"ansible \[core 2\.19\.\d+\]", version), version
    assert "python version = 3.11" in version and str(venv) in version, version

    # And the installed ansible-core passes the playbooks' own check.
    env.update(ANSIBLE_CONFIG=str(bundle.root / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    check = hosts.run(
        [str(venv / "bin" / "ansible-playbook"), "-i", str(inventory), f"playbooks/{CHECK}"],
        env=env,
        cwd=bundle.root,
    )
    assert "failed=0" in check.stdout, check.stdout
