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
