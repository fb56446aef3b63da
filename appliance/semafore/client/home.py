"""A device's state directory: the keystore and the pinned appliance CA certificate.

The CA given at enrolment is copied into the directory (`ca.pem`, mode 0600) and used for every
later connection, so a device keeps trusting exactly the appliance it enrolled with.
"""

from __future__ import annotations

import os
from pathlib import Path

from semafore.client.errors import ClientError

HOME_ENV = "SEMAFORE_CLIENT_HOME"
CA_FILENAME = "ca.pem"


def default_home() -> Path:
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "semafore-client"


def pin_ca(home: Path, ca_file: Path) -> Path:
    """Copy the CA certificate into the device directory (atomically, 0600)."""
    try:
        pem = ca_file.read_bytes()
    except OSError:
        raise ClientError(f"cannot read the CA certificate {ca_file}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ClientError(f"{ca_file} is not a PEM certificate")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = home / CA_FILENAME
    tmp = home / f".{CA_FILENAME}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def ca_for(home: Path, override: Path | None) -> Path:
    """The CA to trust: --ca if given, else the one pinned at enrolment."""
    if override is not None:
        return override
    pinned = home / CA_FILENAME
    if not pinned.exists():
        raise ClientError(f"no pinned CA in {home}; pass --ca FILE")
    return pinned
