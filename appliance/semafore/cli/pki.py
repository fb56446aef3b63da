"""The internal CA and server certificate for air-gapped sites (``semafore init``).

ECDSA P-256 with SHA-256 throughout: accepted by curl, OpenSSL, every browser and mobile TLS
stack (Ed25519 certificates are not). The CA is constrained to issue leaf certificates only
(pathlen 0); the server certificate is valid for 397 days (the CA/Browser Forum cap is 398).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397
CLOCK_SKEW = dt.timedelta(minutes=5)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class KeyPair:
    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes


def _serial() -> int:
    return secrets.randbits(127) | 1  # positive, non-zero, < 20 octets


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SemaFore appliance"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def new_ca(now: dt.datetime, label: str) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"SemaFore internal CA {label} {secrets.token_hex(3)}")
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate, key)


def new_server_certificate(
    ca: KeyPair, now: dt.datetime, dns_names: Sequence[str], ip_addresses: Sequence[IPAddress]
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ip) for ip in ip_addresses]
    common_name = dns_names[0] if dns_names else str(ip_addresses[0])
    not_after = min(now + dt.timedelta(days=SERVER_DAYS), ca.certificate.not_valid_after_utc)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return KeyPair(certificate, key)


# -- files -------------------------------------------------------------------------------------

def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a server certificate file may carry its chain)."""
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_private_key(path: Path) -> PrivateKeyTypes:
    """A PEM private key without a passphrase (the server starts unattended)."""
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def load_ca(certificate_path: Path, key_path: Path) -> KeyPair:
    certificate = load_certificates(certificate_path)[0]
    key = load_private_key(key_path)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not key_matches(certificate, key):
        raise ValueError("the CA key does not belong to the CA certificate")
    return KeyPair(certificate, key)


def key_matches(certificate: x509.Certificate, key: object) -> bool:
    public = getattr(key, "public_key", None)
    if public is None:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return bool(
        public().public_bytes(encoding, spki)
        == certificate.public_key().public_bytes(encoding, spki)
    )


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # ValueError, TypeError, InvalidSignature: not this issuer
        return False
    return True
