"""``semafore serve`` as a process: graceful shutdown, clean failures."""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import sys
import time
from pathlib import Path

from support.appliance import Appliance, ServeProcess, client_session, run_semafore

LAUNCHER = Path(__file__).resolve().parents[1] / "support" / "serve_with_test_routes.py"


async def test_sigterm_lets_an_in_flight_write_finish_then_exits_0(
    appliance: Appliance, ca_ssl_context: ssl.SSLContext
) -> None:
    served = ServeProcess.start(appliance, command=[sys.executable, str(LAUNCHER)])
    try:
        async with client_session(served.url, ca_ssl_context) as client:
            request = asyncio.ensure_future(
                client.post("/test/slow-write", params={"seconds": "1.5", "key": "in-flight"})
            )
            await asyncio.sleep(0.5)  # the handler is now sleeping inside the request
            served.process.terminate()  # SIGTERM
            response = await request
            assert response.status == 200
            assert await response.json() == {"written": "in-flight"}
            response.release()
        code = await asyncio.to_thread(served.process.wait, 20)
    finally:
        served.kill()
    assert code == 0, served.log_text()
    log = served.log_text()
    assert "stopping: finishing in-flight requests" in log and "stopped" in log
    with sqlite3.connect(appliance.settings().storage.database_path) as db:
        rows = db.execute("SELECT value FROM appliance_meta WHERE key = 'in-flight'").fetchall()
    assert rows == [("written",)]


def test_new_connections_are_refused_after_sigterm(appliance: Appliance) -> None:
    served = ServeProcess.start(appliance)
    assert served.terminate() == 0
    import socket

    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
        except ConnectionRefusedError:
            refused = True
    assert refused


def test_serve_with_a_bad_config_exits_1_naming_the_key(appliance: Appliance) -> None:
    appliance.config_path.write_text(
        appliance.config_path.read_text().replace("port = 8443", "port = 70000")
    )
    result = run_semafore("serve", "--config", str(appliance.config_path))
    assert result.returncode == 1
    assert "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_busy_port_exits_1(appliance: Appliance) -> None:
    first = ServeProcess.start(appliance)
    try:
        result = run_semafore("serve", "--config", str(appliance.config_path), timeout=30)
    finally:
        first.terminate()
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
