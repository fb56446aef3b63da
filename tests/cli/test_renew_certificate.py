"""``semafore renew-certificate``: a new server certificate from the same CA."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from semafore.cli.main import main
from semafore.cli.pki import issued_by
from support.appliance import Appliance


def load(path: object) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())  # type: ignore[attr-defined]


def sans(certificate: x509.Certificate) -> tuple[list[str], list[object]]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def test_renews_with_the_current_names_and_the_same_ca(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = appliance.data_dir / "tls"
    before = load(tls / "server.crt")
    assert main(["renew-certificate", "--config", str(appliance.config_path)]) == 0
    after = load(tls / "server.crt")
    assert after.serial_number != before.serial_number
    assert sans(after) == sans(before)
    assert issued_by(after, load(tls / "ca.crt"))
    assert "restart the service" in capsys.readouterr().out
    assert main(["check-config", "--config", str(appliance.config_path)]) == 0


def test_renews_for_new_names(appliance: Appliance) -> None:
    assert main(["renew-certificate", "--config", str(appliance.config_path),
                 "--hostname", "chat.example.org", "--ip", "10.0.0.7"]) == 0
    names, ips = sans(load(appliance.data_dir / "tls" / "server.crt"))
    assert names == ["chat.example.org"]
    assert ips == [ipaddress.ip_address("10.0.0.7")]


def test_without_the_ca_key_it_fails_cleanly(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    (appliance.data_dir / "tls" / "ca.key").unlink()
    assert main(["renew-certificate", "--config", str(appliance.config_path)]) == 1
    assert "cannot use the CA" in capsys.readouterr().err
