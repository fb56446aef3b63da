"""Text that people or devices control is shown as text: markup in an organisation name, an
API token's name (it appears in the audit log), a member's display name (typed by an admin),
a device's name (given by the device when it enrols over the real API; both names also on the
audit page, which shows members and devices by name), a search and an audit filter never
runs. Chromium has JavaScript on, so a payload that ran would open a dialog or log a CSP
violation; a template expression would show 49."""

from __future__ import annotations

from semafore.services import AdminPrincipal
from semafore.services.admin_principal import SCOPES

from .harness import Portal

ADMIN = "+447700900001"
ORG_NAME = '<img src=x onerror=alert("org")><script>alert("org2")</script>'
TOKEN_NAME = '<script>alert("token")</script>'
SEARCH = '"><svg onload=alert("q")>'
ACTOR = '<b onmouseover=alert("a")>x</b>'


async def test_markup_in_names_and_queries_is_shown_as_text(portal: Portal) -> None:
    page = portal.page
    org, admin = await portal.services.orgs.create_org(ORG_NAME, ADMIN)
    principal = AdminPrincipal(org.org_id, admin.user_id, "session", SCOPES, "as_test")
    await portal.services.api_tokens.create(principal, name=TOKEN_NAME, scopes=["audit:read"])
    await portal.sign_in(ADMIN)

    assert await page.locator(".org-name").inner_text() == ORG_NAME
    assert await portal.heading() == ORG_NAME
    assert ORG_NAME not in await page.content()  # it is in the page escaped, not as markup
    assert "&lt;script&gt;alert(\"org2\")&lt;/script&gt;" in await page.content()
    assert await page.locator("main img[src='x'], main script").count() == 0
    await portal.shot("23-xss-org-name")

    await portal.nav("Audit log")
    assert TOKEN_NAME in await page.locator("table.audit").inner_text()
    assert await page.locator("table.audit script").count() == 0

    await portal.goto("/portal/members?q=" + SEARCH.replace('"', "%22").replace(" ", "%20"))
    assert await page.get_by_label("Search members").input_value() == SEARCH
    assert await page.locator("svg").count() == 0

    await portal.goto("/portal/audit?actor=" + ACTOR.replace('"', "%22").replace(" ", "%20"))
    assert "Actor must look like" in await page.locator(".error").inner_text()
    assert await page.get_by_label("Actor").input_value() == ACTOR
    assert await page.locator("main b").count() == 0

    for path in ["/portal/members", "/portal/approvals", "/portal/settings"]:
        await portal.goto(path)
        assert await page.locator(".org-name").inner_text() == ORG_NAME

    assert portal.dialogs == []
    assert [m for m in portal.console_errors if "Content Security Policy" in m] == []


PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "{{7*7}}"]
NAMED = ["+447700900011", "+447700900012", "+447700900013"]


async def test_markup_in_display_names_and_device_names_is_shown_as_text(
    portal: Portal,
) -> None:
    page = portal.page
    org, _ = await portal.services.orgs.create_org("Acme", ADMIN)
    await portal.sign_in(ADMIN)
    for phone, payload in zip(NAMED, PAYLOADS, strict=True):
        await portal.goto("/portal/members")
        await page.get_by_label("Phone number").fill(phone)
        await page.get_by_label("Display name").fill(payload)
        await page.get_by_role("button", name="Add member").click()
        assert await portal.heading() == payload
        await portal.enrol_device(phone, device_name=payload)
    members = {m.phone: m for m in await portal.services.members.list_members(org.org_id)}
    assert [members[p].display_name for p in NAMED] == PAYLOADS
    pending = await portal.services.devices.list_devices(org.org_id, status="pending")
    assert sorted(d.device_name or "" for d in pending) == sorted(PAYLOADS)

    pages = {"/portal/members": PAYLOADS, "/portal/approvals": PAYLOADS,
             "/portal/overview": PAYLOADS,
             # member.added names the member; device.registered the member and the device.
             "/portal/audit?event=member.": PAYLOADS, "/portal/audit?event=device.": PAYLOADS}
    for phone, payload in zip(NAMED, PAYLOADS, strict=True):
        pages[f"/portal/members/{members[phone].user_id}"] = [payload]
    device = pending[0]
    owner = next(m for m in members.values() if m.user_id == device.user_id)
    pages[f"/portal/devices/{device.user_id}/{device.device_id}/reject"] = [
        owner.display_name or "", device.device_name or ""
    ]
    for path, shown in pages.items():
        await portal.goto(path)
        text = await page.locator("main").inner_text()
        html = await page.content()
        for payload in shown:
            assert payload in text, (path, payload)
        assert '"><img src=x' not in html and "<script>alert(1)" not in html, path
        assert await page.locator("main script, main img").count() == 0, path
        names = await page.locator("main .person-name, main .device-name").all_inner_texts()
        assert "49" not in names, path
        if path.startswith("/portal/audit"):
            assert sorted(set(await page.locator("table.audit .person-name")
                              .all_inner_texts())) == sorted(PAYLOADS), path
        if path == "/portal/audit?event=device.":
            assert sorted(await page.locator("table.audit .device-name").all_inner_texts()) \
                == sorted(PAYLOADS)
        if path.startswith("/portal/approvals"):
            assert sorted(await page.locator("main .device-name").all_inner_texts()) \
                == sorted(PAYLOADS)
            await portal.shot("25-xss-device-names")
        if path == "/portal/members":
            await portal.shot("26-xss-display-names")

    assert portal.dialogs == []
    assert [m for m in portal.console_errors if "Content Security Policy" in m] == []
