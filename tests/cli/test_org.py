"""``semafore org create|list|set-limit``."""

from __future__ import annotations

import json

import pytest

from semafore.cli.main import main
from support.appliance import Appliance


def run(appliance: Appliance, *args: str) -> int:
    return main([*args, "--config", str(appliance.config_path)])


def created_org(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(appliance, "org", "create", "Acme Ltd", "--admin-phone", "+447700900001") == 0
    capsys.readouterr()
    assert run(appliance, "org", "list", "--json") == 0
    return json.loads(capsys.readouterr().out)["orgs"][-1]["org_id"]


def test_create_then_list(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(appliance, "org", "create", "Acme Ltd", "--admin-phone", "+447700900001") == 0
    out = capsys.readouterr().out
    assert "created: 'Acme Ltd', member limit 5" in out and "first admin: u_" in out
    assert run(appliance, "org", "list", "--json") == 0
    (org,) = json.loads(capsys.readouterr().out)["orgs"]
    assert (org["name"], org["member_limit"], org["member_count"]) == ("Acme Ltd", 5, 1)
    assert run(appliance, "org", "list") == 0
    table = capsys.readouterr().out
    assert org["org_id"] in table and "1/5" in table


def test_create_with_a_limit(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(appliance, "org", "create", "Big", "--admin-phone", "+447700900001",
               "--member-limit", "500") == 0
    assert "member limit 500" in capsys.readouterr().out


def test_set_limit(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    org_id = created_org(appliance, capsys)
    assert run(appliance, "org", "set-limit", org_id, "25") == 0
    assert "member limit 25 (1 members)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("org", "create", "Acme", "--admin-phone", "07700900001"), "E.164"),
        (("org", "create", "", "--admin-phone", "+447700900001"), "organisation name"),
        (("org", "set-limit", "o_nope", "10"), "no such organisation"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    appliance: Appliance, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert run(appliance, *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_second_org_for_the_same_admin_number_is_refused(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    created_org(appliance, capsys)
    assert run(appliance, "org", "create", "Again", "--admin-phone", "+447700900001") == 1
    assert "already has an account" in capsys.readouterr().err


def test_create_if_absent_creates_once(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ("org", "create", "Acme Ltd", "--admin-phone", "+447700900001", "--if-absent")
    assert run(appliance, *create) == 0
    first = capsys.readouterr().out
    assert "created: 'Acme Ltd'" in first and "first admin: u_" in first
    # Again, and again with the first admin gone from the number: nothing new either time.
    assert run(appliance, *create) == 0
    again = capsys.readouterr().out
    assert "exists: 'Acme Ltd', member limit 5, 1 members; nothing changed" in again
    assert run(appliance, "org", "create", "Acme Ltd", "--admin-phone", "+447700900002",
               "--if-absent") == 0
    assert "nothing changed" in capsys.readouterr().out
    assert run(appliance, "org", "list", "--json") == 0
    (org,) = json.loads(capsys.readouterr().out)["orgs"]
    assert org["org_id"] in first and org["org_id"] in again and org["member_count"] == 1
    # Another name still needs a number without an account.
    assert run(appliance, "org", "create", "Other", "--admin-phone", "+447700900001",
               "--if-absent") == 1
    assert "already has an account" in capsys.readouterr().err
    # Bad input is refused before anything is looked up.
    assert run(appliance, "org", "create", "Acme Ltd", "--admin-phone", "07700900001",
               "--if-absent") == 1
    assert "E.164" in capsys.readouterr().err


def test_usage_errors_exit_2(appliance: Appliance) -> None:
    with pytest.raises(SystemExit) as caught:
        run(appliance, "org", "create", "Acme")  # no --admin-phone
    assert caught.value.code == 2
