"""TLS 1.3 only, no plaintext: a real ``semafore serve`` probed with curl, openssl and sslyze."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.appliance import HOST, ServeProcess, init_appliance


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    appliance = init_appliance(tmp_path_factory.mktemp("tls") / "appliance")
    process = ServeProcess.start(appliance)
    yield process
    assert process.terminate() == 0


def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_the_generated_ca_reaches_healthz(served: ServeProcess) -> None:
    ca = str(served.appliance.ca_path)
    for host in ("127.0.0.1", "localhost"):
        result = run("curl", "--silent", "--show-error", "--cacert", ca,
                     "--resolve", f"localhost:{served.port}:127.0.0.1",
                     f"https://{host}:{served.port}/healthz")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"status": "ok"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_without_the_ca_is_refused(served: ServeProcess) -> None:
    result = run("curl", "--silent", f"https://127.0.0.1:{served.port}/healthz")
    assert result.returncode == 60  # peer certificate cannot be authenticated


def s_client(served: ServeProcess, version_flag: str) -> subprocess.CompletedProcess[str]:
    return run("openssl", "s_client", "-connect", f"{HOST}:{served.port}", version_flag,
               "-CAfile", str(served.appliance.ca_path), "-verify_return_error",
               "-servername", "localhost", stdin="Q\n")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_tls13_is_accepted_and_tls12_is_refused(served: ServeProcess) -> None:
    tls13 = s_client(served, "-tls1_3")
    assert tls13.returncode == 0, tls13.stderr
    assert "Protocol  : TLSv1.3" in tls13.stdout or "TLSv1.3" in tls13.stdout
    assert "Verify return code: 0 (ok)" in tls13.stdout
    tls12 = s_client(served, "-tls1_2")
    assert tls12.returncode != 0
    assert "Cipher is (NONE)" in tls12.stdout or "alert" in tls12.stderr.lower()


def test_plaintext_http_gets_no_http_answer(served: ServeProcess) -> None:
    with socket.create_connection((HOST, served.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not received.startswith(b"HTTP/")
    assert b'"status"' not in received


def test_sslyze_sees_only_tls13(served: ServeProcess) -> None:
    from sslyze import (
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    commands = {
        ScanCommand.SSL_2_0_CIPHER_SUITES, ScanCommand.SSL_3_0_CIPHER_SUITES,
        ScanCommand.TLS_1_0_CIPHER_SUITES, ScanCommand.TLS_1_1_CIPHER_SUITES,
        ScanCommand.TLS_1_2_CIPHER_SUITES, ScanCommand.TLS_1_3_CIPHER_SUITES,
    }
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(
        server_location=ServerNetworkLocation(hostname="localhost", port=served.port,
                                              ip_address=HOST),
        scan_commands=commands,
    )])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED
    assert result.scan_result is not None
    accepted = {}
    for name in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3"):
        attempt = getattr(result.scan_result, f"{name}_cipher_suites")
        assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, name
        accepted[name] = len(attempt.result.accepted_cipher_suites)
    assert accepted["tls_1_3"] > 0
    assert {k: v for k, v in accepted.items() if k != "tls_1_3"} == dict.fromkeys(
        ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2"), 0
    )


def test_served_certificate_chains_to_the_generated_ca(served: ServeProcess) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(served.appliance.ca_path))
    for name in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection((HOST, served.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() == "TLSv1.3"


def test_startup_log_names_the_url_sqlite_version_and_ca(served: ServeProcess) -> None:
    log = served.log_text()
    assert f"https://127.0.0.1:{served.port}/" in log
    assert "sqlite_version=" in log
    assert str(Path(served.appliance.ca_path)) in log
