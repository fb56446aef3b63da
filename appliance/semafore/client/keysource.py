"""Where the keystore's key-encryption key comes from: a passphrase (scrypt) or the OS keyring.

The `keyring` package is optional. When the keystore was created with the keyring, the KEK is a
random 32-byte value stored there under the keystore's absolute path; otherwise it is derived
from the passphrase with the scrypt parameters recorded in the file.
"""

from __future__ import annotations

import base64
import getpass
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from semafore.client.errors import KeystoreError, WrongPassphrase

PASSPHRASE_ENV = "SEMAFORE_CLIENT_PASSPHRASE"  # noqa: S105 - a variable name
KEYRING_SERVICE = "semafore-client"


@dataclass(frozen=True)
class Passphrase:
    value: str

    def __repr__(self) -> str:
        return "Passphrase(***)"


@dataclass(frozen=True)
class RawKey:
    """A KEK handed over directly (tests, or an HSM-backed caller)."""

    value: bytes

    def __repr__(self) -> str:
        return "RawKey(***)"


KeySource = Passphrase | RawKey


def keyring_available() -> bool:
    """True when the `keyring` package is installed and has a working backend."""
    try:
        import keyring
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken backend configuration is "not available", not a crash
        return False
    return type(backend).__module__ != "keyring.backends.fail"


def keyring_load(keystore_path: Path) -> RawKey:
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise KeystoreError("this keystore uses the OS keyring, which is not available") from None
    try:
        value = keyring.get_password(KEYRING_SERVICE, str(keystore_path.resolve()))
    except keyring.errors.KeyringError:
        raise KeystoreError("the OS keyring refused access") from None
    if value is None:
        raise WrongPassphrase("no keyring entry for this keystore")
    return RawKey(base64.b64decode(value))


def keyring_create(keystore_path: Path) -> RawKey:
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise KeystoreError("the OS keyring is not available; use a passphrase") from None
    key = RawKey(secrets.token_bytes(32))
    try:
        keyring.set_password(
            KEYRING_SERVICE, str(keystore_path.resolve()), base64.b64encode(key.value).decode()
        )
    except keyring.errors.KeyringError:
        raise KeystoreError("the OS keyring refused to store the key") from None
    return key


def passphrase_from_env_or_prompt(*, confirm: bool = False) -> Passphrase:
    """$SEMAFORE_CLIENT_PASSPHRASE, else ask on the terminal (twice when creating)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return Passphrase(value)
    try:
        value = getpass.getpass("Keystore passphrase: ")
        if confirm and getpass.getpass("Repeat passphrase: ") != value:
            raise WrongPassphrase("the passphrases differ")
    except (EOFError, KeyboardInterrupt):
        hint = f"set {PASSPHRASE_ENV} or use a terminal"
        raise WrongPassphrase(f"no passphrase given ({hint})") from None
    if not value:
        raise WrongPassphrase("an empty passphrase is not accepted")
    return Passphrase(value)
