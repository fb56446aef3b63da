"""What every subcommand shares: the --config option, loading settings, expected failures."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from semafore.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, Settings, config_path_from_env
from semafore.config import load_settings as _load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An expected failure: printed as one line, exit status 1, no traceback."""


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV_VAR}, then {DEFAULT_CONFIG_PATH})",
    )


def add_actions(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    *,
    help_text: str,
    description: str,
) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The subcommand ``name`` whose ACTIONs (``semafore NAME ACTION``) are added to the result;
    the chosen one is ``args.<name>_command``."""
    parser = subparsers.add_parser(name, help=help_text, description=description)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_org_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org_id", metavar="ORG", help="organisation id (o_...)")


def add_user_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id", metavar="USER", help="member's user id (u_...)")


def load_settings(args: argparse.Namespace) -> Settings:
    """The settings named by --config / $SEMAFORE_CONFIG / the default (ConfigError if bad)."""
    return _load_settings(config_path_from_env(args.config))


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (temp, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
