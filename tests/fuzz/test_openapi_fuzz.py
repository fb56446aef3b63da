"""Schemathesis over every route of docs/openapi.yaml against a real ``semafore serve`` over
TLS, with valid credentials (device token, admin session, admin API token, enrolment ticket and
secret) and with invalid ones: no 5xx, no status the operation does not list (``default`` does
not count; the document's global errors 400/404/405/413/503 do), every body as documented."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.requests import binary_serializer

from fuzz.conftest import FuzzTarget

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
GLOBAL_ERRORS = {400, 404, 405, 413, 503}  # "Errors any route can answer with" (info)
schema = schemathesis.openapi.from_path(SPEC)
# tus-style upload chunks (PATCH /v1/uploads/{id}) are raw bytes like application/octet-stream.
schemathesis.serializer("application/offset+octet-stream")(binary_serializer)
_turn = itertools.count()


def status_is_listed(ctx: Any, response: Any, case: Any) -> bool | None:
    responses = case.operation.definition.raw["responses"]
    status = response.status_code
    if str(status) not in responses and status not in GLOBAL_ERRORS:
        raise AssertionError(
            f"{case.operation.label}: {status} is not listed "
            f"(documented: {sorted(k for k in responses if k != 'default')}): {response.text}"
        )
    if status >= 400 and status != 405:
        problem = response.json()
        assert problem["status"] == status and problem["type"].endswith(problem["code"])
    return None


def credentials(case: Any, creds: Any, *, valid: bool) -> dict[str, str]:
    schemes = {name for requirement in case.operation.definition.raw.get(
        "security", [{}]) for name in requirement}
    device = creds.world.devices(next(iter(creds.world.members)))[0].access_token
    if not valid:
        wrong = ["", "Bearer nonsense", f"Bearer {creds.api_token}x", "Bearer sfs_" + "A" * 43,
                 f"Bearer {device[:-4]}AAAA", f"Bearer {device}" if "adminSession" in schemes
                 else f"Bearer {creds.session}"]
        token = wrong[next(_turn) % len(wrong)]
        return {"Authorization": token} if token else {}
    if case.operation.path == "/v1/admin/sign-out":
        return {"Authorization": f"Bearer {creds.spare_session}"}
    if "adminApiToken" in schemes and next(_turn) % 2:
        return {"Authorization": f"Bearer {creds.api_token}"}
    for scheme, token in (("adminSession", creds.session), ("deviceToken", device),
                          ("enrolmentTicket", creds.enrolment_ticket),
                          ("enrolmentSecret", creds.enrolment_secret)):
        if scheme in schemes:
            return {"Authorization": f"Bearer {token}"}
    return {}


def run(case: Any, target: FuzzTarget, *, valid: bool) -> None:
    case.call_and_validate(
        base_url=target.url,
        session=target.session,
        headers=credentials(case, target.creds, valid=valid),
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance, status_is_listed],
        timeout=10,
        verify=target.session.verify,  # the appliance CA only
    )


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_valid_auth(case: Any, fuzz_target: FuzzTarget) -> None:
    run(case, fuzz_target, valid=True)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=5, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_invalid_auth(case: Any, fuzz_target: FuzzTarget) -> None:
    if not any(case.operation.definition.raw.get("security", [{}])):
        pytest.skip("no credentials on this route")
    run(case, fuzz_target, valid=False)


def test_server_logged_no_errors(fuzz_target: FuzzTarget) -> None:
    """After the fuzzing above: a bug answered with a 4xx would still leave a traceback."""
    log = fuzz_target.served.log_text()
    assert "Traceback" not in log and " ERROR " not in log and " CRITICAL " not in log
