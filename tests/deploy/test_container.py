"""Container tier: the whole operator story against Debian 12 under systemd-nspawn.

systemd is PID 1 in the container; its network namespace has only a loopback interface, so the
host under test has no network at all; Ansible reaches its sshd through the namespace. The
steps run in order and share one container:

bundle -> site.yml -> verify.yml -> site.yml again (0 changed) -> host checks (testinfra) ->
no outbound network -> container restart + verify -> backup, wipe, restore, verify ->
upgrade to a rebuilt bundle + verify -> key rotation + verify -> a broken bundle's upgrade
rolls back by itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import hosts
import pytest

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]

MITOGEN = os.environ.get("SEMAFORE_DEPLOY_MITOGEN", "0") == "1"
# `semafore verify` enrols throw-away devices and the release rate-limits that to about three
# runs per 15 minutes on one box, so the story runs it after install, restore and upgrade only;
# the other verifications run every other check.
SKIP = [s for s in os.environ.get("SEMAFORE_DEPLOY_VERIFY_SKIP", "").split(",") if s]
LIGHT = ("-e", json.dumps({"semafore_verify_skip": sorted({*SKIP, "semafore_verify"})}))
TIMINGS: dict[str, float] = {}


class Story:
    def __init__(
        self, container: hosts.Container, inventory: hosts.Inventory, bundle: hosts.Bundle
    ):
        self.container = container
        self.inventory = inventory
        self.bundle = bundle

    def playbook(
        self, name: str, *extra: str, bundle: hosts.Bundle | None = None
    ) -> hosts.PlaybookRun:
        result = self.inventory.playbook(bundle or self.bundle, name, *extra, mitogen=MITOGEN)
        key = f"{name} ({(bundle or self.bundle).version})"
        TIMINGS[f"{key} #{sum(k.startswith(key) for k in TIMINGS) + 1}"] = result.seconds
        return result

    def verify(self, bundle: hosts.Bundle | None = None, *, semafore_verify: bool = False) -> dict:
        """verify.yml; `semafore verify` only where asked (see LIGHT)."""
        extra = () if semafore_verify else LIGHT
        result = hosts.ok(self.playbook("verify.yml", *extra, bundle=bundle))
        return hosts.verify_report(result.output)


@pytest.fixture(scope="module")
def story(image, bundle, deploy_dir):
    start = time.monotonic()
    container = hosts.Container(image, deploy_dir / "container")
    try:
        container.create()
        container.boot()
        TIMINGS["container create + boot"] = time.monotonic() - start
        inventory = hosts.Inventory.create(
            bundle,
            deploy_dir / "container",
            container.name,
            hosts.site_hostvars(
                container,
                bundle,
                # SSH arrives over the namespace's loopback; timesyncd does not run in containers.
                semafore_base_admin_networks=["127.0.0.0/8"],
                semafore_base_ntp_servers=["127.0.0.1"],
                semafore_verify_skip=SKIP,
            ),
        )
        yield Story(container, inventory, bundle)
    finally:
        if os.environ.get("SEMAFORE_DEPLOY_KEEP") == "1":  # debugging: leave it running
            hosts.log(f"kept: {container.ssh_argv()} (pid {container.proc.pid})")
        else:
            container.destroy()
        TIMINGS["container tier total"] = time.monotonic() - start
        hosts.log(
            "container tier timings: " + json.dumps({k: round(v) for k, v in TIMINGS.items()})
        )


def test_bundle_is_signed_and_complete(bundle, deploy_dir):
    allowed = deploy_dir / "dist" / "allowed_signers"
    verify = [
        "ssh-keygen",
        "-Y",
        "verify",
        "-f",
        str(allowed),
        "-I",
        "release@semafore.example",
        "-n",
        "semafore-bundle",
        "-s",
        f"{bundle.archive}.sig",
    ]
    with open(bundle.archive, "rb") as data:
        assert subprocess.run(verify, stdin=data, capture_output=True, check=False).returncode == 0
    hosts.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=bundle.root)
    sbom = json.loads((bundle.root / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    names = {c["name"].lower() for c in sbom["components"]}
    assert {"aiohttp", "cryptography", "aiosqlite", "pyjwt"} <= names
    assert sbom["metadata"]["component"]["version"] == bundle.version
    listing = hosts.run(["tar", "-tf", str(bundle.root / "wheelhouse.tar")]).stdout
    assert re.search(r"wheelhouse/semafore-.*\.whl", listing)
    assert "wheelhouse/requirements.lock" in listing
    for path in (
        "roles/semafore_appliance",
        "playbooks/site.yml",
        "inventory/production",
        "ansible.cfg",
    ):
        assert (bundle.root / path).exists(), path
    # A tampered archive fails the check.
    tampered = deploy_dir / "tampered.tar.gz"
    tampered.write_bytes(bundle.archive.read_bytes() + b"\0")
    with open(tampered, "rb") as data:
        assert subprocess.run(verify, stdin=data, capture_output=True, check=False).returncode != 0


def test_site_installs(story):
    hosts.ok(story.playbook("site.yml"))


def test_verify_after_install(story):
    report = story.verify(semafore_verify=True)
    assert report.get("result") == "ok", report
    assert report["release"] == story.bundle.version


def test_second_site_run_changes_nothing(story):
    result = hosts.ok(story.playbook("site.yml"))
    assert result.recap.get("changed") == 0, result.output[-8000:]
    assert result.recap.get("failed") == 0


def test_bootstrap_created_the_organisation(story):
    if not hosts.release_has(story.bundle, "org", "create"):
        pytest.skip("this release has no `semafore org create`; bootstrap not exercised")
    out = story.container.sudo(
        "runuser -u semafore -- /opt/semafore/current/venv/bin/semafore org list"
    ).stdout
    assert "Example Organisation" in out


def test_host_state(story, deploy_dir):
    host = story.container.testinfra_host(deploy_dir / "container")
    service = host.service("semafore")
    assert service.is_running and service.is_enabled
    assert host.service("semafore-backup.timer").is_enabled
    assert host.socket("tcp://0.0.0.0:443").is_listening
    listening = {s for s in host.socket.get_listening_sockets() if s.startswith("tcp")}
    assert {s.rsplit(":", 1)[1] for s in listening} <= {"22", "443"}, listening

    user = host.user("semafore")
    assert user.exists and user.shell == "/usr/sbin/nologin" and user.uid < 1000
    expected = {
        "/etc/semafore": ("root", "semafore", 0o750),
        "/etc/semafore/semafore.toml": ("root", "semafore", 0o640),
        "/etc/semafore/tls/server.key": ("root", "semafore", 0o640),
        "/etc/semafore/tls/ca.key": ("root", "root", 0o600),
        "/var/lib/semafore": ("semafore", "semafore", 0o700),
        "/var/backups/semafore": ("semafore", "semafore", 0o700),
        "/etc/nftables.conf": ("root", "root", 0o600),
    }
    for path, (owner, group, mode) in expected.items():
        f = host.file(path)
        assert (f.user, f.group, f.mode) == (owner, group, mode), path
    assert host.file("/etc/semafore/semafore.toml").contains("Ansible managed")

    props = host.check_output(
        "systemctl show semafore.service -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp "
        "-p ReadWritePaths -p CapabilityBoundingSet -p AmbientCapabilities"
    )
    assert "User=semafore" in props
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "PrivateTmp=yes" in props
    assert "ReadWritePaths=/var/lib/semafore\n" in props + "\n"
    assert "CapabilityBoundingSet=cap_net_bind_service\n" in props + "\n"
    assert "AmbientCapabilities=cap_net_bind_service\n" in props + "\n"

    security = host.check_output("systemd-analyze security --no-pager semafore.service")
    exposure = float(
        re.search(r"Overall exposure level for semafore\.service: ([0-9.]+)", security).group(1)
    )
    hosts.log(f"systemd-analyze security exposure of semafore.service: {exposure}")
    assert exposure <= 2.0, security

    ruleset = host.check_output("nft list ruleset")
    assert "policy drop" in ruleset
    assert "tcp dport 22" in ruleset and "@admin_v4" in ruleset
    assert host.file("/etc/systemd/timesyncd.conf.d/semafore.conf").contains("^FallbackNTP=$")
    assert host.file("/etc/systemd/journald.conf.d/semafore.conf").contains("ForwardToSyslog=no")


def test_container_has_no_network(story):
    """Only loopback; no route out; a port open on the host's loopback is out of reach."""
    c = story.container
    links = c.ssh("ip -o link show").stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
    assert c.ssh("ip route show; ip -6 route show").stdout.strip() == ""

    with hosts.loopback_listener(8) as (port, accepted):
        targets = [("127.0.0.1", port), ("192.0.2.1", 443), ("10.0.2.2", port)]
        out = c.ssh(hosts.connect_probe(targets, 3)).stdout
    assert "CONNECTED" not in out, out
    assert not accepted


def test_restart_and_verify(story):
    story.container.poweroff()
    story.container.boot()
    report = story.verify()
    assert report.get("result") == "ok", report


def test_backup_wipe_restore(story):
    c = story.container
    # Something to recognise in the data directory, besides the database.
    c.sudo("runuser -u semafore -- sh -c 'echo restore-marker > /var/lib/semafore/restore-marker'")
    tables_before = c.sudo("sqlite3 -readonly /var/lib/semafore/semafore.db .tables").stdout.split()
    hosts.ok(story.playbook("backup.yml"))

    # The disaster: the data directory's content is lost.
    c.sudo("systemctl stop semafore.service && find /var/lib/semafore -mindepth 1 -delete")
    assert c.sudo("ls -A /var/lib/semafore").stdout.strip() == ""

    hosts.ok(story.playbook("restore.yml", *LIGHT))
    assert c.sudo("cat /var/lib/semafore/restore-marker").stdout.strip() == "restore-marker"
    tables_after = c.sudo("sqlite3 -readonly /var/lib/semafore/semafore.db .tables").stdout.split()
    assert tables_after == tables_before
    assert c.sudo("stat -c %U:%a /var/lib/semafore").stdout.strip() == "semafore:700"
    report = story.verify(semafore_verify=True)
    assert report.get("result") == "ok", report


def test_upgrade_to_rebuilt_bundle(story, deploy_dir, signing_key):
    rebuilt = hosts.build_bundle(
        source=hosts.REPO,
        out_dir=deploy_dir / "dist",
        build_id="2",
        signing_key=signing_key,
        extract_to=deploy_dir / "site" / "2",
    )
    hosts.ok(story.playbook("upgrade.yml", *LIGHT, bundle=rebuilt))
    report = story.verify(bundle=rebuilt, semafore_verify=True)
    assert report.get("result") == "ok", report
    assert report["release"] == rebuilt.version
    # Re-running the upgrade with the running release does nothing.
    again = hosts.ok(story.playbook("upgrade.yml", bundle=rebuilt))
    assert again.recap.get("changed") == 0
    story.bundle = rebuilt


def test_rotate_keys(story):
    if not hosts.release_has(story.bundle, "keys", "rotate-jwt"):
        pytest.skip("this release has no `semafore keys rotate-jwt`")
    keys_before = story.container.sudo("ls -l /var/lib/semafore/keys").stdout
    result = hosts.ok(story.playbook("rotate-keys.yml", *LIGHT))
    assert "Rotate the JWT signing key" in result.output
    assert story.container.sudo("ls -l /var/lib/semafore/keys").stdout != keys_before
    report = story.verify()
    assert report.get("result") == "ok", report


def test_failed_upgrade_rolls_back_by_itself(story, deploy_dir, signing_key):
    source = hosts.broken_source(hosts.REPO, deploy_dir / "broken-source")
    broken = hosts.build_bundle(
        source=source,
        out_dir=deploy_dir / "dist",
        build_id="3-broken",
        signing_key=signing_key,
        extract_to=deploy_dir / "site" / "3",
    )
    marker = "before-bad-upgrade"
    story.container.sudo(
        f"runuser -u semafore -- sh -c 'echo {marker} > /var/lib/semafore/upgrade-marker'"
    )
    result = story.playbook("upgrade.yml", *LIGHT, bundle=broken)
    assert result.returncode != 0
    assert "rolled back to" in result.output, result.output[-8000:]
    assert "Verify the rolled-back appliance" in result.output

    report = story.verify()
    assert report.get("result") == "ok", report
    assert report["release"] == story.bundle.version
    assert story.container.sudo("cat /var/lib/semafore/upgrade-marker").stdout.strip() == marker
