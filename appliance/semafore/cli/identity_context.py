"""What the operator's commands over organisations, members and devices share: opening the
database and the identity services on the box, and printing what they list.

The database is opened as :mod:`semafore.cli.database_context` says; a running server picks up
revocations made here within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from semafore.cli.common import load_settings
from semafore.cli.database_context import operator_database
from semafore.config import Settings
from semafore.services import SystemClock
from semafore.services.identity import IdentityServices, build_identity_services
from semafore.services.otp_providers import ConsoleProvider

OPERATOR = "operator"

T = TypeVar("T")


@contextlib.asynccontextmanager
async def identity_services(settings: Settings) -> AsyncIterator[IdentityServices]:
    async with operator_database(settings) as database:
        # Operator commands never send codes; no need to reach the configured gateway.
        yield build_identity_services(
            settings, SystemClock(), database, provider=ConsoleProvider()
        )


def run_with_identity(
    args: argparse.Namespace, work: Callable[[IdentityServices], Awaitable[T]]
) -> T:
    """The result of ``work`` done with the identity services of the configured appliance."""

    async def with_identity() -> T:
        async with identity_services(load_settings(args)) as identity:
            return await work(identity)

    return asyncio.run(with_identity())


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table on stdout (or a line saying there is nothing)."""
    if not rows:
        print("(none)")
        return
    cells = [[str(h) for h in headers]]
    cells += [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    print()


def print_listing(
    as_json: bool, data: Any, rows: Sequence[Sequence[Any]], headers: Sequence[str]
) -> None:
    """``data`` as JSON, or else ``rows`` as a table under ``headers``."""
    if as_json:
        print_json(data)
    else:
        print_table(rows, headers)


def iso_day(timestamp: int) -> str:
    """The UTC day of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
