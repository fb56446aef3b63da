"""Text that people or devices control is shown as text: markup in an organisation name, an
API token's name (it appears in the audit log), a search and an audit filter never runs.
Chromium has JavaScript on, so a payload that ran would open a dialog or log a CSP violation.

(Members are phone numbers and devices are numbered; neither has a free-text name. The
organisation name and the API token name are the free text the portal shows.)"""

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
