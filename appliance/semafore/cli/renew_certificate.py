"""``semafore renew-certificate``: a new server certificate from the internal CA.

Clients keep working: they pin the CA, which does not change. Restart the service afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from cryptography import x509

from semafore.cli import pki
from semafore.cli.common import CliError, add_config_option, load_settings, write_private_file
from semafore.cli.init import CA_KEY, ip_argument, valid_hostname


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "renew-certificate", help="issue a new server certificate from the internal CA",
        description=(
            "Issue a new server certificate (397 days) from the CA made by `semafore init`, "
            "for the names and addresses of the current certificate unless --hostname/--ip "
            "are given, and replace server.tls_certificate and server.tls_private_key. "
            "Restart the service to use it."
        ),
    )
    add_config_option(parser)
    parser.add_argument("--hostname", action="append", default=[], metavar="NAME",
                        help="DNS name for the certificate (repeatable; replaces the current)")
    parser.add_argument("--ip", action="append", default=[], metavar="ADDR", type=ip_argument,
                        help="IP address for the certificate (repeatable; replaces the current)")
    parser.add_argument("--ca-key", metavar="PATH", type=Path,
                        help=f"the CA's private key (default: DATA_DIR/{CA_KEY})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    server = settings.server
    ca_cert_path = settings.resolve(server.tls_ca_certificate)
    ca_key_path = args.ca_key or settings.storage.data_dir / CA_KEY
    try:
        ca = pki.load_ca(ca_cert_path, ca_key_path)
    except (OSError, ValueError, TypeError) as exc:
        raise CliError(f"cannot use the CA {ca_cert_path} with key {ca_key_path}: {exc}") from None
    cert_path = settings.resolve(server.tls_certificate)
    names, ips = list(args.hostname), list(args.ip)
    for name in names:
        if not valid_hostname(name):
            raise CliError(f"--hostname: not a valid DNS name: {name!r}")
    if not names and not ips:
        names, ips = _current_names(cert_path)
    if not names and not ips:
        raise CliError("give --hostname and/or --ip (the current certificate names none)")
    now = dt.datetime.now(dt.UTC)
    leaf = pki.new_server_certificate(ca, now, names, ips)
    write_private_file(settings.resolve(server.tls_private_key),
                       pki.private_key_pem(leaf.private_key))
    write_private_file(cert_path, pki.certificate_pem(leaf.certificate))
    print(f"server certificate: {cert_path}")
    print(f"valid until:        {leaf.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"names:              {', '.join([*names, *map(str, ips)])}")
    print("restart the service to use it")
    return 0


def _current_names(path: Path) -> tuple[list[str], list[pki.IPAddress]]:
    try:
        certificate = pki.load_certificates(path)[0]
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, IndexError, x509.ExtensionNotFound):
        return [], []
    return list(san.get_values_for_type(x509.DNSName)), list(
        san.get_values_for_type(x509.IPAddress)
    )
