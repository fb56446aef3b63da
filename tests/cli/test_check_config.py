"""``semafore check-config``: OK for a sound setup, one message naming the key otherwise."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from semafore.cli import pki
from semafore.cli.main import main
from support.appliance import Appliance, run_semafore


def check(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-config", "--config", str(appliance.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_fresh_setup_is_ok(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(appliance, capsys)
    assert (code, err) == (0, "")
    assert out.startswith("configuration OK")


def test_config_path_from_environment(appliance: Appliance) -> None:
    import subprocess
    import sys

    env = {**os.environ, "SEMAFORE_CONFIG": str(appliance.config_path)}
    script = Path(sys.executable).parent / "semafore"
    result = subprocess.run([str(script), "check-config"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def replace_in_config(appliance: Appliance, old: str, new: str) -> None:
    text = appliance.config_path.read_text()
    assert old in text
    appliance.config_path.write_text(text.replace(old, new))


def write_server_cert(appliance: Appliance, *, days_ago: int, days: int) -> None:
    tls = appliance.data_dir / "tls"
    ca = pki.load_ca(tls / "ca.crt", tls / "ca.key")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    leaf = pki.new_server_certificate(ca, start, ["localhost"], [])
    leaf_cert = leaf.certificate
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    rebuilt = (
        x509.CertificateBuilder()
        .subject_name(leaf_cert.subject).issuer_name(leaf_cert.issuer)
        .public_key(leaf_cert.public_key()).serial_number(leaf_cert.serial_number)
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
        .sign(ca.private_key, hashes.SHA256())
    )
    (tls / "server.crt").write_bytes(pki.certificate_pem(rebuilt))
    (tls / "server.key").write_bytes(pki.private_key_pem(leaf.private_key))


def test_expired_certificate(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    write_server_cert(appliance, days_ago=30, days=10)
    code, _, err = check(appliance, capsys)
    assert code == 1 and "server.tls_certificate: expired" in err


def test_certificate_expiring_soon_is_a_warning(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    write_server_cert(appliance, days_ago=1, days=10)
    code, out, err = check(appliance, capsys)
    assert code == 0 and "configuration OK" in out
    assert "warning: server.tls_certificate: expires on" in err


def test_key_not_matching_the_certificate(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = appliance.data_dir / "tls"
    (tls / "server.key").write_bytes((tls / "ca.key").read_bytes())
    code, _, err = check(appliance, capsys)
    assert code == 1 and "server.tls_private_key: does not match" in err


def test_certificate_not_from_the_configured_ca(
    appliance: Appliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = pki.new_ca(dt.datetime.now(dt.UTC), "other")
    (appliance.data_dir / "tls" / "ca.crt").write_bytes(pki.certificate_pem(other.certificate))
    code, _, err = check(appliance, capsys)
    assert code == 1 and "server.tls_ca_certificate: did not issue" in err


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('data_dir = "."', 'data_dir = "missing"', "storage.data_dir:"),
        ('data_dir = "."', 'data_dir = "semafore.toml"', "storage.data_dir:"),
        ('tls_certificate = "tls/server.crt"', 'tls_certificate = "tls/nope.crt"',
         "server.tls_certificate:"),
        ('tls_private_key = "tls/server.key"', 'tls_private_key = "tls/server.crt"',
         "server.tls_private_key:"),
        ('tls_ca_certificate = "tls/ca.crt"', 'tls_ca_certificate = "semafore.toml"',
         "server.tls_ca_certificate:"),
        ("port = 8443", "port = 0", "server.port: must be between"),
        ("port = 8443", 'port = "8443"', "server.port: must be an integer"),
        ("port = 8443", "port = 8443\nspeed = 1", "server.speed: unknown setting"),
        ("[logging]", "[logging]\n[bogus]", "bogus: unknown section"),
        ('level = "info"', 'level = "loud"', "logging.level: must be one of"),
        ("[server]", "[server", "not valid TOML"),
    ],
    ids=["data-dir", "data-dir-is-a-file", "cert-missing", "key-not-a-key", "ca-not-a-cert",
         "range", "type", "unknown-key", "unknown-section", "literal", "toml"],
)
def test_each_problem_is_one_message_naming_the_key(
    appliance: Appliance, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    replace_in_config(appliance, old, new)
    code, out, err = check(appliance, capsys)
    assert code == 1
    assert message in err
    assert out == "" and len(err.strip().splitlines()) == 1


def test_short_metrics_token_is_refused(
    appliance: Appliance, capsys: pytest.CaptureFixture[str]
) -> None:
    (appliance.data_dir / "metrics.token").write_text("short\n")
    appliance.configure(metrics={"token_file": "metrics.token"})
    code, _, err = check(appliance, capsys)
    assert code == 1 and "metrics.token_file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_data_directory(appliance: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    appliance.data_dir.chmod(0o500)
    try:
        code, _, err = check(appliance, capsys)
    finally:
        appliance.data_dir.chmod(0o700)
    assert code == 1 and "storage.data_dir" in err and "not writable" in err


def test_missing_config_file_exits_1_without_traceback(tmp_path: Path) -> None:
    result = run_semafore("check-config", "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 1
    assert "configuration file not found" in result.stderr
    assert "Traceback" not in result.stderr
