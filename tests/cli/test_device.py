"""``semafore device list|approve|reject|revoke`` and ``semafore keys rotate-jwt``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from semafore.cli.identity_context import identity_services
from semafore.cli.main import main
from semafore.services.otp_providers import ConsoleProvider
from support.appliance import Appliance
from support.identity import EnrollingDevice

MEMBER = "+447700900002"


def run(appliance: Appliance, *args: str) -> int:
    return main([*args, "--config", str(appliance.config_path)])


class CapturingProvider(ConsoleProvider):
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []

    async def send(self, phone: str, message: str) -> None:
        self.codes.append(message.split("code is ")[1][:6])


async def enrol(appliance: Appliance, count: int = 1) -> dict[str, Any]:
    """An org with a member whose ``count`` devices registered (pending)."""
    async with identity_services(appliance.settings()) as identity:
        provider = CapturingProvider()
        identity.otp.provider = provider
        org, _ = await identity.orgs.create_org("Acme", "+447700900001")
        await identity.members.add_member(org.org_id, MEMBER, actor="operator")
        devices = []
        for _ in range(count):
            await identity.enrolment.request_code(MEMBER, client_address=None)
            await identity.otp.wait_for_deliveries()
            ticket = await identity.enrolment.verify_code(MEMBER, provider.codes[-1])
            await identity.enrolment.register(
                ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id)
            )
            devices.append(ticket.device_id)
        return {"org_id": org.org_id, "user_id": ticket.user_id, "devices": devices}


@pytest.fixture
def enrolled(appliance: Appliance) -> dict[str, Any]:
    return asyncio.run(enrol(appliance, 3))


def listed(appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str],
           *flags: str) -> list[tuple[int, str]]:
    capsys.readouterr()
    assert run(appliance, "device", "list", org_id, "--json", *flags) == 0
    return [(d["device_id"], d["status"]) for d in json.loads(capsys.readouterr().out)["devices"]]


def test_list_approve_reject_revoke(
    appliance: Appliance, enrolled: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    org, user = enrolled["org_id"], enrolled["user_id"]
    assert listed(appliance, org, capsys) == [(1, "pending"), (2, "pending"), (3, "pending")]
    assert run(appliance, "device", "approve", org, user, "1") == 0
    assert run(appliance, "device", "approve", org, user, "2") == 0
    assert run(appliance, "device", "reject", org, user, "3") == 0
    assert "rejected" in capsys.readouterr().out
    assert listed(appliance, org, capsys) == [(1, "approved"), (2, "approved")]
    assert run(appliance, "device", "revoke", org, user, "2") == 0
    assert listed(appliance, org, capsys) == [(1, "approved")]
    assert listed(appliance, org, capsys, "--pending") == []
    assert run(appliance, "device", "list", org) == 0
    assert "IDENTITY KEY" in capsys.readouterr().out


def test_revoke_signals_the_server_and_says_when_it_cannot(
    appliance: Appliance, enrolled: dict[str, Any], caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org, user = enrolled["org_id"], enrolled["user_id"]
    signal = appliance.settings().storage.data_dir / "semafore.db-revoked"
    assert run(appliance, "device", "approve", org, user, "1") == 0
    assert run(appliance, "device", "approve", org, user, "2") == 0
    assert not signal.exists()
    assert run(appliance, "device", "revoke", org, user, "1") == 0
    assert signal.read_text().strip().isdigit()

    # A signal that cannot be replaced (here a directory in its place): the revocation still
    # commits, and the operator is told the server will take up to a second.
    signal.unlink()
    (signal / "blocker").mkdir(parents=True)
    assert run(appliance, "device", "revoke", org, user, "2") == 0
    assert "could not signal the revocation" in caplog.text
    assert sorted(p.name for p in signal.parent.glob("semafore.db-revoked*")) == [
        "semafore.db-revoked"
    ]
    assert listed(appliance, org, capsys) == [(3, "pending")]


def test_errors(appliance: Appliance, enrolled: dict[str, Any],
                capsys: pytest.CaptureFixture[str]) -> None:
    org, user = enrolled["org_id"], enrolled["user_id"]
    assert run(appliance, "device", "approve", org, user, "99") == 1
    assert "no such device" in capsys.readouterr().err
    assert run(appliance, "device", "approve", org, user, "1") == 0
    assert run(appliance, "device", "approve", org, user, "1") == 1
    assert "already approved" in capsys.readouterr().err
    assert run(appliance, "device", "approve", "o_other", user, "2") == 1
    assert "no such device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        run(appliance, "device", "approve", org, user, "two")
    assert caught.value.code == 2


def test_rotate_jwt(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(appliance, "keys", "rotate-jwt") == 0
    first = capsys.readouterr().out
    assert "new access-token signing key" in first and "3600 more seconds" in first
    assert run(appliance, "keys", "rotate-jwt") == 0
    assert capsys.readouterr().out.split()[4] != first.split()[4]
    ring = json.loads((appliance.data_dir / "keys" / "jwt-signing.json").read_text())
    assert [k["retired_at"] is None for k in ring["keys"]] == [False, False, True]
    assert (appliance.data_dir / "keys" / "jwt-signing.json").stat().st_mode & 0o777 == 0o600
