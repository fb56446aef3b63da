"""``semafore init``: a configuration, a private data directory, the database, TLS material."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
from pathlib import Path

from semafore.cli import pki
from semafore.cli.common import CliError, write_private_file
from semafore.config import ServerSettings, Settings, load_settings
from semafore.storage import BlobStore, Database, latest_version

SERVER_DEFAULTS = ServerSettings()  # slots dataclass: defaults live on an instance

DEFAULT_NAMES = ("localhost",)
DEFAULT_IPS = ("127.0.0.1", "::1")
TLS_DIR = "tls"
CA_KEY = "tls/ca.key"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?)+$")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "init",
        help="create a configuration, data directory, database and TLS certificates",
        description=(
            "Create a data directory (mode 0700), a configuration file, the SQLite database "
            "and an internal CA with a server certificate for the given names and addresses "
            "(localhost, 127.0.0.1 and ::1 are always included). Refuses to touch an existing "
            "setup unless --force is given; --force rewrites the configuration and issues a "
            "new server certificate from the existing CA (or a new CA with --new-ca) and never "
            "deletes the database."
        ),
    )
    parser.add_argument("--data-dir", required=True, metavar="DIR", help="data directory")
    parser.add_argument(
        "--config", metavar="PATH", help="configuration file to write (default: DIR/semafore.toml)"
    )
    parser.add_argument(
        "--hostname", action="append", default=[], metavar="NAME",
        help="DNS name clients use to reach the appliance (repeatable)",
    )
    parser.add_argument(
        "--ip", action="append", default=[], metavar="ADDR", type=ip_argument,
        help="IP address clients use to reach the appliance (repeatable)",
    )
    parser.add_argument("--port", type=_port, default=SERVER_DEFAULTS.port, metavar="N",
                        help=f"TCP port to listen on (default: {SERVER_DEFAULTS.port})")
    parser.add_argument("--listen-host", default=SERVER_DEFAULTS.host, metavar="H",
                        help=f"address to listen on (default: {SERVER_DEFAULTS.host})")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing configuration and server certificate")
    parser.add_argument("--new-ca", action="store_true",
                        help="with --force: also replace the CA (every client needs the new one)")
    parser.set_defaults(func=run)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535: {port}")
    return port


def ip_argument(value: str) -> pki.IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {value!r}") from None


def valid_hostname(name: str) -> bool:
    return bool(_HOSTNAME.fullmatch(name))


def run(args: argparse.Namespace) -> int:
    for name in args.hostname:
        if not valid_hostname(name):
            raise CliError(f"--hostname: not a valid DNS name: {name!r}")
    if args.new_ca and not args.force:
        raise CliError("--new-ca only makes sense with --force")
    data_dir = Path(args.data_dir).expanduser().absolute()
    config_path = Path(args.config).expanduser().absolute() if args.config else (
        data_dir / "semafore.toml"
    )
    defaults = SERVER_DEFAULTS
    tls_files = [defaults.tls_certificate, defaults.tls_private_key, defaults.tls_ca_certificate,
                 Path(CA_KEY)]
    existing = [p for p in [config_path, *(data_dir / f for f in tls_files)] if p.exists()]
    if existing and not args.force:
        raise CliError(
            f"{existing[0]} already exists; refusing to overwrite an existing setup "
            "(use --force to rewrite the configuration and server certificate)"
        )

    old_umask = os.umask(0o077)
    try:
        _make_private_dir(data_dir)
        _make_private_dir(data_dir / TLS_DIR)
        config_path.parent.mkdir(parents=True, exist_ok=True)
        ca = _issue_tls(args, data_dir, defaults)
        write_private_file(config_path, _config_text(args, data_dir, config_path).encode())
        settings = load_settings(config_path)
        applied = asyncio.run(_create_database(settings))
    finally:
        os.umask(old_umask)

    print(f"configuration:  {config_path}")
    print(f"data directory: {data_dir}")
    print(f"database:       {settings.storage.database_path} (schema version {applied})")
    print(f"CA certificate: {data_dir / defaults.tls_ca_certificate} ({ca})")
    print(f"next: semafore serve --config {config_path}")
    return 0


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _issue_tls(args: argparse.Namespace, data_dir: Path, defaults: ServerSettings) -> str:
    now = dt.datetime.now(dt.UTC)
    ca_cert_path = data_dir / defaults.tls_ca_certificate
    ca_key_path = data_dir / CA_KEY
    names = list(dict.fromkeys([*args.hostname, *DEFAULT_NAMES]))
    ips = list(dict.fromkeys([*args.ip, *map(ipaddress.ip_address, DEFAULT_IPS)]))
    ca = None
    if ca_cert_path.exists() and ca_key_path.exists() and not args.new_ca:
        try:
            ca = pki.load_ca(ca_cert_path, ca_key_path)
        except (OSError, ValueError, TypeError) as exc:
            raise CliError(
                f"{ca_cert_path}: cannot reuse the existing CA ({exc}); use --new-ca"
            ) from None
        if ca.certificate.not_valid_after_utc < now + dt.timedelta(days=pki.SERVER_DAYS):
            raise CliError(f"{ca_cert_path}: the CA expires soon; use --new-ca")
        origin = "existing CA kept"
    if ca is None:
        ca = pki.new_ca(now, names[0])
        write_private_file(ca_key_path, pki.private_key_pem(ca.private_key))
        write_private_file(ca_cert_path, pki.certificate_pem(ca.certificate))
        origin = "new CA: give this file to every client"
    server = pki.new_server_certificate(ca, now, names, ips)
    write_private_file(data_dir / defaults.tls_private_key, pki.private_key_pem(server.private_key))
    write_private_file(data_dir / defaults.tls_certificate, pki.certificate_pem(server.certificate))
    return origin


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _config_text(args: argparse.Namespace, data_dir: Path, config_path: Path) -> str:
    # A config inside its data directory says data_dir = "." so the directory can be moved.
    data_dir_value = "." if config_path.parent == data_dir else str(data_dir)
    return (
        "# SemaFore configuration, written by `semafore init`.\n"
        "# Every key, its default and meaning: docs/configuration.md\n"
        "\n[server]\n"
        f"host = {_toml(args.listen_host)}\n"
        f"port = {args.port}\n"
        "# Relative paths are under storage.data_dir.\n"
        f"tls_certificate = {_toml(str(SERVER_DEFAULTS.tls_certificate))}\n"
        f"tls_private_key = {_toml(str(SERVER_DEFAULTS.tls_private_key))}\n"
        f"tls_ca_certificate = {_toml(str(SERVER_DEFAULTS.tls_ca_certificate))}\n"
        "\n[storage]\n"
        "# Relative to the directory of this file.\n"
        f"data_dir = {_toml(data_dir_value)}\n"
        "\n[logging]\n"
        'level = "info"\n'
    )


async def _create_database(settings: Settings) -> int:
    database = Database(
        settings.storage.database_path, busy_timeout_ms=settings.storage.busy_timeout_ms,
        reader_connections=1,
    )
    await database.open()
    await database.close()
    BlobStore(settings.storage.blob_dir).prepare()
    for path in settings.storage.data_dir.glob("semafore.db*"):
        os.chmod(path, 0o600)
    return latest_version()
