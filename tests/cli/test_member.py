"""``semafore member add|import|list|rename|remove``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semafore.cli.main import main
from support.appliance import Appliance


def run(appliance: Appliance, *args: str) -> int:
    return main([*args, "--config", str(appliance.config_path)])


@pytest.fixture
def org_id(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(appliance, "org", "create", "Acme", "--admin-phone", "+447700900001") == 0
    assert run(appliance, "org", "list", "--json") == 0
    org = json.loads(capsys.readouterr().out.split("\n", 2)[2])["orgs"][0]["org_id"]
    return str(org)


def members(appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str]) -> list:
    capsys.readouterr()
    assert run(appliance, "member", "list", org_id, "--json") == 0
    return json.loads(capsys.readouterr().out)["members"]


def test_add_list_remove(
    appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(appliance, "member", "add", org_id, "+447700900002") == 0
    assert "added (member)" in capsys.readouterr().out
    assert run(appliance, "member", "add", org_id, "+447700900003", "--admin") == 0
    listed = members(appliance, org_id, capsys)
    assert [(m["phone"], m["role"], m["devices"], m["last_active"]) for m in listed] == [
        ("+447700900001", "admin", 0, None),
        ("+447700900002", "member", 0, None),
        ("+447700900003", "admin", 0, None),
    ]
    assert run(appliance, "member", "list", org_id) == 0
    assert "LAST ACTIVE" in capsys.readouterr().out
    assert run(appliance, "member", "remove", org_id, listed[1]["user_id"]) == 0
    assert [m["phone"] for m in members(appliance, org_id, capsys)] == [
        "+447700900001", "+447700900003"
    ]


def test_last_admin_stays(
    appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (admin,) = members(appliance, org_id, capsys)
    assert run(appliance, "member", "remove", org_id, admin["user_id"]) == 1
    assert "at least one admin" in capsys.readouterr().err


def test_member_limit(appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str]
                      ) -> None:
    for i in range(4):
        assert run(appliance, "member", "add", org_id, f"+44770090010{i}") == 0
    assert run(appliance, "member", "add", org_id, "+447700900200") == 1
    assert "limit of 5 members" in capsys.readouterr().err


def test_import_all_or_nothing(
    appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,role\n+447700900002\n07700900003\n")
    assert run(appliance, "member", "import", org_id, str(bad)) == 1
    captured = capsys.readouterr()
    assert "row 3: invalid (phone_invalid)" in captured.out and "nothing was imported" in (
        captured.err
    )
    assert len(members(appliance, org_id, capsys)) == 1
    good = tmp_path / "good.csv"
    good.write_text("+447700900002\n+447700900003,admin\n")
    assert run(appliance, "member", "import", org_id, str(good)) == 0
    assert "2 members added" in capsys.readouterr().out
    assert len(members(appliance, org_id, capsys)) == 3


def test_import_of_a_missing_file(appliance: Appliance, org_id: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(appliance, "member", "import", org_id, "/nonexistent.csv") == 1
    assert "cannot read" in capsys.readouterr().err


def test_unknown_org_or_member(appliance: Appliance, org_id: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(appliance, "member", "add", "o_nope", "+447700900002") == 1
    assert "no such organisation" in capsys.readouterr().err
    assert run(appliance, "member", "remove", org_id, "u_nope") == 1
    assert "no such member" in capsys.readouterr().err


def test_display_names(
    appliance: Appliance, org_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(appliance, "member", "add", org_id, "+447700900002", "--name", "Zoë Smith") == 0
    assert run(appliance, "member", "add", org_id, "+447700900003", "--name", "x" * 65) == 1
    assert "1 to 64 characters" in capsys.readouterr().err
    listed = members(appliance, org_id, capsys)
    assert [(m["phone"], m["display_name"]) for m in listed] == [
        ("+447700900001", None), ("+447700900002", "Zoë Smith")
    ]
    assert run(appliance, "member", "list", org_id) == 0
    table = capsys.readouterr().out
    assert "NAME" in table and "Zoë Smith" in table
    user_id = listed[1]["user_id"]
    assert run(appliance, "member", "rename", org_id, user_id, "Zoë") == 0
    assert members(appliance, org_id, capsys)[1]["display_name"] == "Zoë"
    assert run(appliance, "member", "rename", org_id, user_id) == 0
    assert members(appliance, org_id, capsys)[1]["display_name"] is None
