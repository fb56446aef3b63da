"""``semafore serve`` plus test-only routes, for black-box tests that need a slow request.

Runs the real serve code path (preflight, logging, signals, graceful shutdown) with one extra
route: ``POST /test/slow-write?seconds=S&key=K`` sleeps S seconds, then writes K into
``appliance_meta`` through the database writer and answers after COMMIT.

Usage: python tests/support/serve_with_test_routes.py --config PATH
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import aiosqlite
from aiohttp import web

from semafore.cli.logsetup import configure_logging
from semafore.cli.preflight import check_settings
from semafore.cli.serve import serve
from semafore.config import load_settings
from semafore.web import json_response
from semafore.web.appkeys import SERVICES


async def slow_write(request: web.Request) -> web.Response:
    seconds = float(request.query.get("seconds", "1"))
    key = request.query["key"]
    await asyncio.sleep(seconds)

    async def insert(conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "INSERT INTO appliance_meta (key, value) VALUES (?, 'written')", (key,)
        )

    await request.app[SERVICES].database.write("test.slow_write", insert)
    return json_response({"written": key})


def add_test_routes(app: web.Application) -> None:
    app.router.add_post("/test/slow-write", slow_write)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    settings = load_settings(args.config)
    configure_logging(settings.logging)
    check_settings(settings)
    os.umask(0o077)
    asyncio.run(serve(settings, configure=add_test_routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
