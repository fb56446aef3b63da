"""``semafore init``: private modes, a sound CA and server certificate, no accidental overwrite."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from semafore.cli.main import main
from semafore.cli.pki import issued_by, key_matches, load_private_key
from semafore.config import load_settings
from support.appliance import Appliance, init_appliance, run_semafore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_creates_private_directory_files_and_a_loadable_config(
    appliance_template: Appliance,
) -> None:
    data = appliance_template.data_dir
    assert mode(data) == 0o700
    assert mode(data / "tls") == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "semafore.toml", "semafore.db", "ca.crt", "ca.key", "server.crt", "server.key"
    }
    for path in files:
        assert mode(path) == 0o600, path
    settings = load_settings(appliance_template.config_path)
    assert settings.storage.data_dir == data.resolve()
    assert settings.server.port == 8443 and settings.server.host == "127.0.0.1"


def test_ca_and_server_certificate_are_what_clients_accept(
    appliance_template: Appliance,
) -> None:
    tls = appliance_template.data_dir / "tls"
    ca, leaf = cert(tls / "ca.crt"), cert(tls / "server.crt")
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert issued_by(leaf, ca)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    }
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=398)
    assert key_matches(leaf, load_private_key(tls / "server.key"))
    assert key_matches(ca, load_private_key(tls / "ca.key"))


def test_names_addresses_port_and_listen_host_are_used(tmp_path: Path) -> None:
    appliance = init_appliance(
        tmp_path / "data", "--hostname", "chat.example.org", "--ip", "10.1.2.3",
        "--port", "9443", "--listen-host", "0.0.0.0",
    )
    leaf = cert(appliance.data_dir / "tls" / "server.crt")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["chat.example.org", "localhost"]
    assert ipaddress.ip_address("10.1.2.3") in san.get_values_for_type(x509.IPAddress)
    settings = appliance.settings()
    assert (settings.server.port, settings.server.host) == (9443, "0.0.0.0")


def test_config_elsewhere_names_the_data_directory_absolutely(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "semafore.toml"
    assert main(["init", "--data-dir", str(tmp_path / "var"), "--config", str(config)]) == 0
    assert load_settings(config).storage.data_dir == (tmp_path / "var").resolve()
    assert mode(config) == 0o600


def test_refuses_to_overwrite_without_force(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (appliance.data_dir / "tls" / "server.crt").read_bytes()
    assert main(["init", "--data-dir", str(appliance.data_dir)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert (appliance.data_dir / "tls" / "server.crt").read_bytes() == before


def test_force_reissues_the_server_certificate_from_the_same_ca_and_keeps_the_database(
    appliance: Appliance,
) -> None:
    tls = appliance.data_dir / "tls"
    ca_before, leaf_before = (tls / "ca.crt").read_bytes(), (tls / "server.crt").read_bytes()
    db = appliance.settings().storage.database_path
    db_before = db.stat().st_ino
    assert main(["init", "--data-dir", str(appliance.data_dir), "--force",
                 "--hostname", "new.example.org"]) == 0
    assert (tls / "ca.crt").read_bytes() == ca_before
    assert (tls / "server.crt").read_bytes() != leaf_before
    assert issued_by(cert(tls / "server.crt"), cert(tls / "ca.crt"))
    assert db.stat().st_ino == db_before
    assert main(["init", "--data-dir", str(appliance.data_dir), "--force", "--new-ca"]) == 0
    assert (tls / "ca.crt").read_bytes() != ca_before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hostname", "bad name!"], "--hostname"),
        (["--new-ca"], "--new-ca"),
    ],
)
def test_bad_arguments_exit_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["init", "--data-dir", str(tmp_path / "d"), *args]) == 1
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_semafore("init", "--data-dir", str(tmp_path / "d"), "--port", "99999")
    assert result.returncode == 2  # the real process exit status
    assert "port must be between" in result.stderr
    for argv in (["init"], ["no-such-command"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


@pytest.mark.parametrize(
    "command", ["init", "serve", "check-config", "migrate", "backup", "renew-certificate"]
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: semafore " + command)
    assert "--config" in out
