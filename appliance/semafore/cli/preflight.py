"""Checks a configuration can run, without starting anything (check-config, and serve first).

Each failure is a :class:`ConfigError` naming the key; soon-to-expire certificates are
returned as warnings.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509

from semafore.app import read_metrics_token
from semafore.cli import pki
from semafore.config import ConfigError, Settings
from semafore.web.tls import server_ssl_context

EXPIRY_WARNING = dt.timedelta(days=30)


def check_settings(settings: Settings, *, now: dt.datetime | None = None) -> list[str]:
    """Raise ConfigError for the first problem found; return warnings."""
    now = now or dt.datetime.now(dt.UTC)
    _check_data_dir(settings.storage.data_dir)
    server = settings.server
    chain = _certificates("server.tls_certificate", settings.resolve(server.tls_certificate))
    leaf = chain[0]
    key_path = settings.resolve(server.tls_private_key)
    _readable("server.tls_private_key", key_path)
    try:
        key = pki.load_private_key(key_path)
    except (ValueError, TypeError):
        raise ConfigError(
            f"server.tls_private_key: {key_path} is not a PEM private key without a passphrase"
        ) from None
    if not pki.key_matches(leaf, key):
        raise ConfigError(
            "server.tls_private_key: does not match the certificate in server.tls_certificate"
        )
    if leaf.not_valid_after_utc <= now:
        raise ConfigError(
            f"server.tls_certificate: expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if leaf.not_valid_before_utc > now:
        raise ConfigError(
            "server.tls_certificate: not valid before "
            f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check the clock)"
        )
    ca_path = settings.resolve(server.tls_ca_certificate)
    ca = _certificates("server.tls_ca_certificate", ca_path)[0]
    if not any(pki.issued_by(cert, ca) for cert in chain):
        raise ConfigError(
            "server.tls_ca_certificate: did not issue the certificate (or its chain) in "
            "server.tls_certificate"
        )
    server_ssl_context(settings)  # what OpenSSL itself thinks of the pair
    read_metrics_token(settings)
    warnings = []
    if leaf.not_valid_after_utc - now < EXPIRY_WARNING:
        warnings.append(
            f"server.tls_certificate: expires on {leaf.not_valid_after_utc:%Y-%m-%d} "
            "(renew it: see docs/operations.md)"
        )
    return warnings


def _check_data_dir(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"storage.data_dir: {path} does not exist (run `semafore init`)")
    if not path.is_dir():
        raise ConfigError(f"storage.data_dir: {path} is not a directory")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"storage.data_dir: {path} is not writable by this user")


def _readable(key: str, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"{key}: {path} does not exist")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{key}: {path} is not readable by this user")


def _certificates(key: str, path: Path) -> list[x509.Certificate]:
    _readable(key, path)
    try:
        certificates = pki.load_certificates(path)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"{key}: {path} holds no PEM certificate")
    return certificates
