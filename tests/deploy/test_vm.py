"""VM tier: Debian 12 under QEMU (KVM where a stock kernel runs, else TCG), air-gapped.

The guest's only link is QEMU user networking with ``restrict=on``: SSH is forwarded in from the
host's loopback and nothing gets out. Kept short for CI: site.yml -> verify.yml -> reboot ->
verify.yml, and a proof that the guest cannot open an outbound connection. Ansible runs with
mitogen here (the emulated guest's Python is slow).
"""

from __future__ import annotations

import json
import os
import time

import hosts
import pytest

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(2400)]

MITOGEN = os.environ.get("SEMAFORE_DEPLOY_VM_MITOGEN", "1") == "1"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def vm(image, bundle, deploy_dir):
    start = time.monotonic()
    machine = hosts.VirtualMachine(image, deploy_dir / "vm")
    try:
        machine.create()
        machine.boot()
        TIMINGS["boot to SSH"] = time.monotonic() - start
        skip = [s for s in os.environ.get("SEMAFORE_DEPLOY_VERIFY_SKIP", "").split(",") if s]
        machine.inventory = hosts.Inventory.create(
            bundle,
            deploy_dir / "vm",
            machine.name,
            hosts.site_hostvars(
                machine,
                bundle,
                # hostfwd connections arrive from QEMU's gateway address 10.0.2.2.
                semafore_base_admin_networks=["10.0.2.0/24"],
                # NTP packets to the gateway go nowhere (restrict=on); no public pool either.
                semafore_base_ntp_servers=["10.0.2.2"],
                semafore_verify_skip=skip,
                semafore_verify_wait_seconds=180,
            ),
        )
        yield machine
    finally:
        machine.destroy()
        TIMINGS["VM tier total"] = time.monotonic() - start
        hosts.log("VM tier timings: " + json.dumps({k: round(v) for k, v in TIMINGS.items()}))


def playbook(vm, bundle, name: str) -> hosts.PlaybookRun:
    result = vm.inventory.playbook(bundle, name, mitogen=MITOGEN, timeout=1800)
    TIMINGS[f"{name} #{sum(k.startswith(name) for k in TIMINGS) + 1}"] = result.seconds
    return hosts.ok(result)


def test_site_then_verify(vm, bundle):
    hosts.log(f"VM accelerator: {vm.accel}")
    playbook(vm, bundle, "site.yml")
    playbook(vm, bundle, "verify.yml")


def test_reboot_then_verify(vm, bundle):
    start = time.monotonic()
    vm.reboot()
    TIMINGS["reboot to SSH"] = time.monotonic() - start
    assert vm.ssh("systemctl is-enabled semafore.service").stdout.strip() == "enabled"
    playbook(vm, bundle, "verify.yml")


def test_guest_cannot_connect_out(vm):
    """QEMU's gateway 10.0.2.2 stands for the host: without restrict=on a guest connection to
    it reaches a port on the host's loopback. A listener there must never see the guest, and
    the guest's own firewall refuses the attempt as well."""
    with hosts.loopback_listener(20) as (port, accepted):
        probe = hosts.connect_probe([("10.0.2.2", port)], 5)
        # As root with the appliance firewall flushed: the air gap alone must hold.
        out = vm.sudo(
            "nft list ruleset > /root/ruleset.saved && nft flush ruleset && "
            f"{probe}; nft -f /etc/nftables.conf",
            timeout=120,
        ).stdout
        with_firewall = vm.ssh(probe, timeout=120).stdout
    assert "CONNECTED" not in out, out
    assert "CONNECTED" not in with_firewall, with_firewall
    assert not accepted
    resolv = vm.ssh("getent hosts deb.debian.org || echo unresolved", check=False).stdout
    assert "unresolved" in resolv
    assert "policy drop" in vm.sudo("nft list chain inet semafore output").stdout
