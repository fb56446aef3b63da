"""Organisation isolation on every /v1/admin/ route, over real HTTPS.

The routes are enumerated from the app's router, so a new admin route is covered (or makes this
test fail until it is classified) without anyone remembering to add it. An admin of org A —
by session and by a full-scope API token — calls:

* every route with path parameters, filled with org B's real ids: the answer is a 404
  identical to the answer for ids that exist nowhere, and the database does not change;
* every GET route without path parameters (with B's ids in the query too): 200, and nothing of
  B's appears in the answer;
* every other route must be listed below with the reason it cannot name another organisation.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from semafore.services import ManualClock, Services
from semafore.services.admin_principal import SCOPES
from semafore.web.appkeys import SERVICES
from support.admin import HttpAdmin, enrolled_device, http_json, sign_in_over_http
from support.appliance import RunningServer

A_ADMIN, A_MEMBER = "+447700900001", "+447700900002"
B_ADMIN, B_MEMBER, B_PENDING = "+447700900101", "+447700900102", "+447700900103"
PARAM = re.compile(r"\{([a-z_]+)\}")

# Routes without path parameters that change state: why they cannot reach another org.
NO_FOREIGN_IDS = {
    ("post", "/v1/admin/sign-in"): "unauthenticated; the same answer for every number",
    ("post", "/v1/admin/sign-in/verify"): "unauthenticated; proves a code for one number",
    ("post", "/v1/admin/sign-in/complete"): "unauthenticated; a ticket names the admin",
    ("post", "/v1/admin/sign-out"): "ends the caller's own session",
    ("post", "/v1/admin/session/reauth"): "the caller's own session",
    ("post", "/v1/admin/tokens"): "creates a token in the caller's organisation",
    ("post", "/v1/admin/audit/verify"): "verifies the appliance-wide chain; reports counts only",
    ("post", "/v1/admin/audit/checkpoint"): "signs the appliance-wide chain; no org data",
    ("post", "/v1/admin/members"): (
        "adds to the caller's organisation; a number with an account anywhere is refused "
        "(one account per number, appliance-wide)"
    ),
    ("post", "/v1/admin/members/import"): "as POST /v1/admin/members, for a CSV file",
}
# Bodies for routes whose handler validates the body before looking the target up.
BODIES: dict[tuple[str, str], Any] = {
    ("patch", "/v1/admin/members/{user_id}"): {"role": "admin"},
}
NOWHERE = {"user_id": "u_" + "0" * 32, "device_id": "1", "token_id": "tk_" + "0" * 32,
           "org_id": "o_" + "0" * 32}


@pytest.fixture
async def world(http: aiohttp.ClientSession, running: RunningServer,
                clock: ManualClock) -> dict[str, Any]:
    services: Services = running.app[SERVICES]
    org_a, _ = await services.orgs.create_org("Acme", A_ADMIN)
    a_member = await services.members.add_member(org_a.org_id, A_MEMBER, actor="operator")
    org_b, b_admin = await services.orgs.create_org("Globex", B_ADMIN)
    b_member = await services.members.add_member(org_b.org_id, B_MEMBER, actor="operator")
    b_pending = await services.members.add_member(org_b.org_id, B_PENDING, actor="operator")
    a_device = await enrolled_device(running, org_a.org_id, A_MEMBER, approve=True)
    b_device = await enrolled_device(running, org_b.org_id, B_MEMBER, approve=True)
    b_pending_device = await enrolled_device(running, org_b.org_id, B_PENDING, approve=False)

    admin_b = await sign_in_over_http(http, running, clock, B_ADMIN)
    _, b_token = await http_json(http, "POST", "/v1/admin/tokens",
                                 {"name": "b", "scopes": sorted(SCOPES)}, bearer=admin_b.token)
    admin_a = await sign_in_over_http(http, running, clock, A_ADMIN)
    _, a_token = await http_json(http, "POST", "/v1/admin/tokens",
                                 {"name": "a", "scopes": sorted(SCOPES)}, bearer=admin_a.token)
    return {
        "admin_a": admin_a, "a_token": a_token["token"],
        "a_ids": {"user_id": a_member.user_id, "device_id": str(a_device[1]),
                  "token_id": a_token["token_id"], "org_id": org_a.org_id},
        "b_sets": [
            {"user_id": b_device[0], "device_id": str(b_device[1]),
             "token_id": b_token["token_id"], "org_id": org_b.org_id},
            {"user_id": b_pending_device[0], "device_id": str(b_pending_device[1]),
             "token_id": b_token["token_id"], "org_id": org_b.org_id},
            {"user_id": b_admin.user_id, "device_id": "1", "token_id": b_token["token_id"],
             "org_id": org_b.org_id},
        ],
        "b_secrets": [org_b.org_id, b_admin.user_id, b_member.user_id, b_pending.user_id,
                      b_token["token_id"], B_ADMIN, B_MEMBER, B_PENDING, "Globex"],
    }


def admin_routes(running: RunningServer) -> list[tuple[str, str]]:
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in running.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/admin/")
        and route.method != "HEAD"
    }
    return sorted(routes)


def fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"{path}: add the parameter {{{name}}} to the isolation test's ids"
        return ids[name]

    return PARAM.sub(value, path)


def snapshot(running: RunningServer) -> dict[str, list[Any]]:
    """Every row of every table, except what merely records that a credential was used."""
    path = Path(running.settings.storage.database_path)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != 'admin_sessions'")]
        state = {}
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")
                       if r[1] != "last_used_day"]
            state[table] = sorted(map(repr, conn.execute(
                f"SELECT {', '.join(columns)} FROM {table}")))
    return state


@pytest.mark.parametrize("via", ["session", "api_token"])
async def test_every_admin_route_keeps_organisations_apart(
    http: aiohttp.ClientSession, running: RunningServer, world: dict[str, Any], via: str
) -> None:
    admin_a: HttpAdmin = world["admin_a"]
    bearer = admin_a.token if via == "session" else world["a_token"]
    routes = admin_routes(running)
    assert len(routes) >= 20, routes
    before = snapshot(running)
    checked = 0
    for method, path in routes:
        body = BODIES.get((method, path), {} if method in {"post", "put", "patch"} else None)
        if PARAM.search(path):
            nowhere = await http_json(http, method.upper(), fill(path, NOWHERE), body,
                                      bearer=bearer)
            assert nowhere[0] in {403, 404}, (method, path, nowhere)
            if nowhere[0] == 403:  # session-only route and an API token: refused before lookup
                assert via == "api_token" and nowhere[1]["code"] == "session_required"
            for ids in world["b_sets"]:
                if not set(PARAM.findall(path)) <= set(ids):
                    continue
                foreign = await http_json(http, method.upper(), fill(path, ids), body,
                                          bearer=bearer)
                assert foreign == nowhere, (method, path, ids)
                checked += 1
        elif method == "get":
            query = "?user_id=" + world["b_sets"][0]["user_id"]
            status, answer = await http_json(http, "GET", path + query, bearer=bearer)
            if status == 403:
                assert via == "api_token" and answer["code"] == "session_required", path
                continue
            assert status == 200, (path, answer)
            text = repr(answer)
            for secret in world["b_secrets"]:
                assert secret not in text, (path, secret)
            checked += 1
        else:
            assert (method, path) in NO_FOREIGN_IDS, (
                f"{method.upper()} {path}: a new admin route that changes state; say in "
                "NO_FOREIGN_IDS why it cannot reach another organisation, or give it path ids"
            )
    assert snapshot(running) == before
    assert checked >= 15


async def test_the_same_routes_work_with_the_callers_own_ids(
    http: aiohttp.ClientSession, running: RunningServer, world: dict[str, Any]
) -> None:
    """The 404s above are about ownership, not broken routes: own ids are found."""
    admin_a: HttpAdmin = world["admin_a"]
    for method, path in admin_routes(running):
        if method == "get" and PARAM.search(path):
            status, answer = await http_json(http, "GET", fill(path, world["a_ids"]),
                                             bearer=admin_a.token)
            assert status == 200, (path, answer)
