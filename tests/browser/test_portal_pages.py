"""The rest of the portal in Chromium: CSV import with its report, removing a member and
rejecting a device (each through a confirmation page), the recent sign-in prompt before an
approval, self-service sign-up, error pages, a recovery-code sign-in, and a forged cross-site
form that changes nothing."""

from __future__ import annotations

from pathlib import Path

from .harness import Portal, copy_to_docs

ADMIN = "+447700900001"
MEMBER = "+447700900002"
DOC_SHOTS = ["14-import-report", "15-confirm-remove", "16-reauth", "17-sign-up"]


async def test_csv_import_report_then_remove_a_member(portal: Portal, tmp_path: Path) -> None:
    page = portal.page
    await portal.services.orgs.create_org("Acme Ltd", ADMIN)
    await portal.sign_in(ADMIN)

    bad = tmp_path / "bad.csv"
    bad.write_text("phone,role\n+447700900011\nnot-a-number\n+447700900011\n+447700900012,boss\n")
    await portal.nav("Members")
    await page.get_by_label("CSV file").set_input_files(str(bad))
    await page.get_by_role("button", name="Import").click()
    assert await portal.heading() == "Import report"
    assert "Nothing was imported" in await page.locator(".error").inner_text()
    rows = await page.locator("tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == ["3", "4", "5"]
    assert "Repeated in the file" in rows[1] and "Not a valid row" in rows[2]
    await portal.shot("14-import-report")
    assert len(await portal.services.members.list_members(
        (await portal.services.orgs.list_orgs())[0].org_id)) == 1

    good = tmp_path / "good.csv"
    good.write_text("phone\n+447700900011\n+447700900012,admin\n")
    await portal.nav("Members")
    await page.get_by_label("CSV file").set_input_files(str(good))
    await page.get_by_role("button", name="Import").click()
    assert "2 members were added" in await page.locator(".success").inner_text()
    assert (await page.locator("tbody tr").all_inner_texts())[0].split("\t")[1] == "Added"

    # Search, then remove one member through the confirmation page.
    await portal.nav("Members")
    await page.get_by_label("Search members").fill("900012")
    await page.get_by_role("button", name="Search").click()
    assert await page.locator("tbody tr").count() == 1
    await page.get_by_role("link", name="Remove").click()
    assert await portal.heading() == "Remove +447700900012?"
    assert "signed out at once" in await page.locator(".consequences").inner_text()
    await portal.shot("15-confirm-remove")
    await page.get_by_role("button", name="Remove member").click()
    assert "The member was removed" in await portal.notice()
    assert "+44 7700 900012" not in await page.locator("table").inner_text()
    copy_to_docs(["14-import-report", "15-confirm-remove"])


async def test_approval_after_fifteen_minutes_asks_for_the_authenticator_again(
    portal: Portal,
) -> None:
    page = portal.page
    org, _ = await portal.services.orgs.create_org("Acme Ltd", ADMIN)
    await portal.services.members.add_member(org.org_id, MEMBER, actor="operator")
    await portal.sign_in(ADMIN)
    first = await portal.enrol_device(MEMBER)
    second = await portal.enrol_device(MEMBER)

    await portal.nav("Approvals")
    await portal.keep_alive(16 * 60)  # still signed in, but not recently
    assert "Approving needs a recent sign-in" in await page.locator(".callout").inner_text()
    await page.locator("tbody tr").first.get_by_role("button", name="Approve").click()
    assert await portal.heading() == "Confirm it's you"
    await portal.shot("16-reauth")
    devices = await portal.services.devices.list_devices(org.org_id, status="pending")
    assert len(devices) == 2  # nothing was approved

    await page.get_by_label("Authenticator code").fill("000000")
    await page.get_by_role("button", name="Confirm").click()
    assert "didn't work" in await page.locator(".error").inner_text()
    await page.get_by_label("Authenticator code").fill(portal.totp())
    await page.get_by_role("button", name="Confirm").click()
    assert "that's confirmed" in await portal.notice()
    await page.locator("tbody tr").first.get_by_role("button", name="Approve").click()
    assert "Device approved" in await portal.notice()

    # Reject the other one, after a confirmation page.
    await page.get_by_role("link", name="Reject…").click()
    assert await portal.heading() == f"Reject device {second['device_id']} of {MEMBER}?"
    await page.get_by_role("button", name="Reject device").click()
    assert "Device rejected" in await portal.notice()
    assert (await portal.device_tokens(first["secret"]))["status"] == "approved"
    async with portal.http.post("/v1/enrolment/status", json={}, headers={
            "Authorization": f"Bearer {second['secret']}"}) as response:
        assert (await response.json())["status"] == "rejected"
    copy_to_docs(["16-reauth"])


async def test_self_service_sign_up_then_sign_in_with_a_recovery_code(portal: Portal) -> None:
    page = portal.page
    await portal.goto("/portal/sign-in")
    await page.get_by_role("link", name="Create an organisation").click()
    assert await portal.heading() == "Create your organisation"
    await portal.shot("17-sign-up")
    await page.get_by_label("Organisation name").fill("Northwind Trading")
    await page.get_by_label("Your phone number").fill(ADMIN)
    await page.get_by_role("button", name="Send code").click()
    assert await portal.heading() == "Confirm your number"
    await portal.shot("18-sign-up-code")
    await page.get_by_label("Code from the text message").fill(await portal.last_code(ADMIN))
    await page.get_by_role("button", name="Create organisation").click()
    assert await portal.heading() == "Northwind Trading is ready"
    await portal.shot("19-sign-up-done")

    codes = await portal.sign_in(ADMIN)
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Phone number").fill(ADMIN)
    await page.get_by_role("button", name="Send code").click()
    await page.get_by_label("Code from the text message").fill(await portal.last_code(ADMIN))
    await page.get_by_role("button", name="Continue").click()
    assert await portal.heading() == "Enter your authenticator code"
    await portal.shot("20-sign-in-totp")
    await page.get_by_text("Lost your phone? Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(codes[0])
    await page.get_by_role("button", name="Sign in with recovery code").click()
    assert await portal.heading() == "Northwind Trading"
    copy_to_docs(["17-sign-up"])


async def test_error_pages_and_a_forged_cross_site_form(portal: Portal) -> None:
    page = portal.page
    org, _ = await portal.services.orgs.create_org("Acme Ltd", ADMIN)
    await portal.sign_in(ADMIN)

    await portal.goto("/portal/no-such-page")
    assert await portal.heading() == "Page not found"
    await portal.shot("21-not-found")
    await portal.goto("/portal/members/u_nobody")
    assert await portal.heading() == "That didn't work"
    assert "No such member" in await page.locator("main").inner_text()

    # Another site's page posts a form to the portal while the admin is signed in: the
    # session cookie (SameSite=Strict) is not sent and the Origin is foreign. Nothing changes.
    await page.goto("about:blank")
    await page.set_content(
        f'<form method="post" action="{portal.url("/portal/members")}">'
        '<input name="phone" value="+447700900066"><input name="csrf_token" value="x">'
        '<button>Win a prize</button></form>'
    )
    await page.get_by_role("button", name="Win a prize").click()
    await page.wait_for_load_state()
    assert await portal.heading() == "Request refused"
    await portal.shot("22-request-refused")
    assert len(await portal.services.members.list_members(org.org_id)) == 1



async def test_sign_up_page_when_sign_up_is_off(portal_signup_off: Portal) -> None:
    portal = portal_signup_off
    await portal.goto("/portal/sign-in")
    assert await portal.page.get_by_role("link", name="Create an organisation").count() == 0
    await portal.goto("/portal/sign-up")
    assert await portal.heading() == "Sign-up is turned off here"
    assert await portal.page.locator("form").count() == 0
    await portal.shot("24-sign-up-off")
