"""Fixtures for the deployment tests: the cached host image, a signing key and bundles.

The tiers (marker ``deploy``) need root: they boot containers and VMs and create network
namespaces. Without root they are skipped with that reason; the lint test always runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hosts
import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="deploy tiers boot containers/VMs and need root")
    for item in items:
        if "deploy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def deploy_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="session")
def image() -> Path:
    return hosts.build_image()


@pytest.fixture(scope="session")
def signing_key(deploy_dir) -> Path:
    """A throw-away bundle signing key (production keeps its key offline)."""
    key = deploy_dir / "bundle-signing-key"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "release@semafore.example",
            "-f",
            str(key),
        ],
        check=True,
    )
    return key


@pytest.fixture(scope="session")
def bundle(deploy_dir, signing_key) -> hosts.Bundle:
    """The bundle built from this tree: what a release manager hands to the site."""
    return hosts.build_bundle(
        source=hosts.REPO,
        out_dir=deploy_dir / "dist",
        build_id="1",
        signing_key=signing_key,
        extract_to=deploy_dir / "site" / "1",
    )


def release_has(bundle: hosts.Bundle, *command: str) -> bool:
    """Whether the release in the bundle has a CLI command (checked in a scratch venv)."""
    venv = bundle.root.parent / "probe-venv"
    if not (venv / "bin" / "semafore").exists():
        wheels = bundle.root.parent / "probe-wheels"
        wheels.mkdir(exist_ok=True)
        subprocess.run(
            ["tar", "-xf", str(bundle.root / "wheelhouse.tar"), "-C", str(wheels)], check=True
        )
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "--no-index",
                "--find-links",
                str(wheels / "wheelhouse"),
                "-r",
                str(wheels / "wheelhouse" / "requirements.lock"),
            ],
            check=True,
        )
    result = subprocess.run(
        [str(venv / "bin" / "semafore"), *command, "--help"], capture_output=True, check=False
    )
    return result.returncode == 0


def site_hostvars(host: hosts.Host, bundle: hosts.Bundle, **extra) -> dict:
    """What a site sets for its own host, on top of the example inventory's group_vars."""
    hostvars = host.ansible_hostvars()
    hostvars.update(
        semafore_tls_hostnames=["semafore.test"],
        semafore_tls_ip_addresses=[],
        semafore_appliance_server_public_url="https://semafore.test",
    )
    if not release_has(bundle, "org", "create"):
        # The example inventory bootstraps an organisation; this release cannot yet.
        hostvars["semafore_appliance_bootstrap_org_name"] = ""
    hostvars.update(extra)
    return hostvars
