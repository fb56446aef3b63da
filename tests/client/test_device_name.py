"""``semafore-client enrol --device-name``: checked before a code is spent, sent with the keys
at registration, left out when not given."""

from __future__ import annotations

import pytest

from semafore.client import errors
from semafore.client.cli import build_parser
from semafore.client.commands import _device_name
from semafore.client.device_state import new_device_keys
from semafore.client.enrolment import registration_body
from semafore.protocol import DeviceAddress


def test_option_is_parsed() -> None:
    args = build_parser().parse_args(
        ["enrol", "+447700900101", "--device-name", "Alice's laptop"]
    )
    assert args.device_name == "Alice's laptop"


def test_name_is_checked_before_anything_is_sent() -> None:
    assert _device_name(None) is None
    assert _device_name("  Alice's laptop 💻 ") == "Alice's laptop 💻"
    for bad in ("", "   ", "x" * 65, "a\nb", "a\x00b"):
        with pytest.raises(errors.ClientError):
            _device_name(bad)


def test_registration_body_carries_the_name_only_when_given() -> None:
    keys = new_device_keys(DeviceAddress("u_" + "a" * 32, 1))
    assert "device_name" not in registration_body(keys)
    assert registration_body(keys, "Alice's laptop")["device_name"] == "Alice's laptop"
