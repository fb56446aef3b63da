"""The audit page names people as an admin knows them: "display name (number)" for a named
member, the number for one without a name, the device's name for a named device and "device N"
for an unnamed one (or one whose row, and so its name, is gone); a removed member's entries
keep the reference as stored. The JSON Lines export is the log as stored, references and all."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Page

from .harness import Portal

ADMIN = "+447700900001"
ALICE, BOB, CAROL = "+447700900002", "+447700900003", "+447700900004"


async def rows(page: Page) -> list[tuple[str, str, str]]:
    """(event, actor, target) for each row of the audit table, as the page shows them."""
    shown = []
    for row in await page.locator("table.audit tbody tr").all():
        cells = row.locator("td")
        event = await cells.nth(2).locator("code").inner_text()
        shown.append((event, (await cells.nth(3).inner_text()).strip(),
                      (await cells.nth(4).inner_text()).strip()))
    return shown


async def test_audit_page_shows_names_and_numbers(portal_no_js: Portal) -> None:
    portal = portal_no_js
    page = portal.page
    services = portal.services
    org, admin = await services.orgs.create_org("Acme", ADMIN)
    as_admin = f"member:{admin.user_id}"
    alice = await services.members.add_member(org.org_id, ALICE, display_name="Alice Example",
                                              actor=as_admin)
    await services.members.add_member(org.org_id, BOB, actor=as_admin)
    carol = await services.members.add_member(org.org_id, CAROL, display_name="Carol Gone",
                                              actor=as_admin)
    laptop = await portal.enrol_device(ALICE, device_name="laptop")
    phone = await portal.enrol_device(ALICE, device_name="old phone")
    await services.devices.reject(org.org_id, alice.user_id, phone["device_id"], actor=as_admin)
    unnamed = await portal.enrol_device(BOB)
    await services.members.remove_member(org.org_id, carol.user_id, actor=as_admin)
    await portal.sign_in(ADMIN)

    alice_shown = "Alice Example (+44 7700 900002)"
    await portal.goto("/portal/audit?event=member.")
    members = await rows(page)
    assert ("member.added", "+44 7700 900001", alice_shown) in members
    assert ("member.added", "+44 7700 900001", "+44 7700 900003") in members
    # Carol is gone: her entries name her as the log does, by reference.
    assert ("member.added", "+44 7700 900001", f"member:{carol.user_id}") in members
    assert ("member.removed", "+44 7700 900001", f"member:{carol.user_id}") in members
    assert "Carol Gone" not in await page.locator("main").inner_text()
    assert await page.locator("table.audit .person-name").all_inner_texts() == ["Alice Example"]

    await portal.goto("/portal/audit?event=device.")
    devices = await rows(page)
    assert ("device.registered", alice_shown,
            f"{alice_shown}, laptop") in devices
    # A rejected device's row, and with it its name, is gone: it is "device N" from then on.
    assert ("device.registered", alice_shown,
            f"{alice_shown}, device {phone['device_id']}") in devices
    assert ("device.rejected", "+44 7700 900001",
            f"{alice_shown}, device {phone['device_id']}") in devices
    assert ("device.registered", "+44 7700 900003",
            f"+44 7700 900003, device {unnamed['device_id']}") in devices
    assert await page.locator("table.audit .device-name").all_inner_texts() == ["laptop"]
    await portal.shot("27-audit-names")
    # The actor link still filters by the stored reference.
    link = page.locator("table.audit a", has_text="Alice Example").first
    assert await link.get_attribute("href") == \
        f"/portal/audit?actor=member%3A{alice.user_id}"

    # The export is the log as stored: references, never names or numbers.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export JSON Lines").click()
    text = Path(await (await download_info.value).path()).read_text()
    exported = [json.loads(line) for line in text.splitlines()]
    assert {"actor": f"member:{alice.user_id}",
            "target": f"device:{alice.user_id}/{laptop['device_id']}"} \
        in [{"actor": e["actor"], "target": e["target"]} for e in exported]
    for shown in ["Alice Example", "laptop", "+44", ALICE, BOB]:
        assert shown not in text, shown
