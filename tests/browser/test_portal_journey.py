"""The administrator's journey in the portal, in Chromium with JavaScript off: sign in (phone
code, then authenticator enrolment with pyotp), add a member, approve the device that member
enrols through the real API, revoke it and see its next request refused, read the audit log,
filter it, export it, verify the chain, and test the code provider."""

from __future__ import annotations

import json
from pathlib import Path

from .harness import Portal, copy_to_docs

ADMIN = "+447700900001"
MEMBER = "+447700900002"
DOC_SHOTS = ["01-sign-in", "03-enrol-authenticator", "04-recovery-codes", "05-overview",
             "06-members", "08-approvals", "09-member-devices", "10-confirm-revoke",
             "11-audit-log", "12-audit-verify", "13-settings"]


async def test_sign_in_add_member_approve_revoke_audit(portal_no_js: Portal) -> None:
    portal = portal_no_js
    page = portal.page
    org, _ = await portal.services.orgs.create_org("Acme Ltd", ADMIN)

    codes = await portal.sign_in(ADMIN, shots=True)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert await portal.heading() == "Acme Ltd"
    await portal.shot("05-overview")

    # Add a member.
    await portal.nav("Members")
    await page.get_by_label("Phone number").fill("+44 7700 900002")
    await page.get_by_role("button", name="Add member").click()
    assert "Member added" in await portal.notice()
    assert await portal.heading() == "+44 7700 900002"
    await portal.shot("07-member-no-devices")
    await portal.nav("Members")
    await portal.shot("06-members")

    # The member's phone enrols through the API: the device waits for approval.
    device = await portal.enrol_device(MEMBER)
    assert (await portal.device_tokens(device["secret"]))["status"] == "pending"
    await portal.nav("Overview")
    assert await page.locator(".stat .figure").nth(1).inner_text() == "1"
    await portal.nav("Approvals")
    row = page.locator("tbody tr", has_text="+44 7700 900002")
    assert await row.count() == 1
    await portal.shot("08-approvals")
    await row.get_by_role("button", name="Approve").click()
    assert "Device approved" in await portal.notice()
    assert "All clear" in await page.locator(".card").inner_text()

    # Approved: the device collects its tokens and can call the API.
    status = await portal.device_tokens(device["secret"])
    assert status["status"] == "approved"
    access = status["tokens"]["access_token"]
    assert await portal.device_call(access) == 200

    # Revoke it from the member's page, through the confirmation step.
    await portal.nav("Members")
    await page.get_by_role("link", name="+44 7700 900002").first.click()
    assert await page.locator(".badge-approved").count() == 1
    await portal.shot("09-member-devices")
    await page.get_by_role("link", name="Revoke…").click()
    assert await portal.heading() == "Revoke device 1 of +447700900002?"
    assert "signed out at once" in await page.locator(".consequences").inner_text()
    await portal.shot("10-confirm-revoke")
    await page.get_by_role("button", name="Revoke device").click()
    assert "Device revoked" in await portal.notice()
    assert "No devices" in await page.locator(".card").inner_text()
    assert await portal.device_call(access) == 401  # the very next request is refused

    # The audit log has all of it.
    await portal.nav("Audit log")
    events = await page.locator("table.audit code.muted").all_inner_texts()
    for event in ["org.created", "admin.totp_enrolled", "admin.signed_in", "member.added",
                  "device.registered", "device.approved", "device.revoked"]:
        assert event in events, event
    await portal.shot("11-audit-log")

    await page.get_by_label("Type").select_option("device.")
    await page.get_by_role("button", name="Apply filters").click()
    filtered = await page.locator("table.audit code.muted").all_inner_texts()
    assert sorted(filtered) == ["device.approved", "device.registered", "device.revoked"]

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export JSON Lines").click()
    download = await download_info.value
    assert download.suggested_filename == "semafore-audit.jsonl"
    lines = Path(await download.path()).read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [e["event"] for e in exported] == ["device.registered", "device.approved",
                                              "device.revoked"]
    assert {e["org_id"] for e in exported} == {org.org_id}

    # Verify the chain; sign a checkpoint and see it reported.
    await page.get_by_role("link", name="Reset").click()
    await page.get_by_role("button", name="Verify chain").click()
    assert await portal.heading() == "Audit chain check"
    assert "The audit log is intact" in await page.locator(".success").inner_text()
    await page.get_by_role("button", name="Sign a checkpoint now").click()
    assert "checkpoint was signed" in await portal.notice()
    await page.get_by_role("button", name="Verify chain").click()
    facts = await page.locator(".facts").nth(1).inner_text()
    assert "this appliance's current key" in facts
    await portal.shot("12-audit-verify")

    # Settings: the provider test goes to the admin's own phone.
    await portal.nav("Settings")
    await page.get_by_role("button", name="Send a test message to my phone").click()
    assert "test message was handed to the provider" in await page.locator(".success").inner_text()
    assert "test message from your admin portal" in await portal.last_message(ADMIN)
    assert "Off" not in await page.locator(".facts").nth(1).inner_text()  # sign-up is on here
    await portal.shot("13-settings")

    await page.get_by_role("button", name="Sign out").click()
    assert await portal.heading() == "Sign in to your organisation"
    assert "You have signed out" in await portal.notice()
    await portal.goto("/portal/overview")
    assert await portal.heading() == "Sign in to your organisation"
    assert portal.dialogs == []
    copy_to_docs(DOC_SHOTS)
