"""/metrics: Prometheus text from the app's own registry, scraped from loopback or with a token."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from semafore.services import Forbidden, Unauthenticated
from semafore.web.appkeys import METRICS, SERVICES
from semafore.web.routes.metrics import check_access, is_loopback
from support.appliance import Appliance, RunningServer, client_session

NAMES = (
    "semafore_http_requests_total",
    "semafore_http_request_duration_seconds_bucket",
    "semafore_db_writer_queue_depth",
    "semafore_db_commit_batch_units_bucket",
    "semafore_db_commit_duration_seconds_bucket",
    "process_cpu_seconds_total",
)


async def scrape(client: aiohttp.ClientSession, **kwargs: Any) -> str:
    async with client.get("/metrics", **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        return await response.text()


async def test_metrics_expose_requests_queue_and_commits(
    server: RunningServer, client: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        async with client.get("/healthz") as response:
            assert response.status == 200
    async with client.get("/nope") as response:
        assert response.status == 404

    async def touch(conn: Any) -> None:
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (x)")

    await server.app[SERVICES].database.write("test.touch", touch)
    text = await scrape(client)
    for name in NAMES:
        assert name in text, name
    assert 'semafore_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert 'route="(unmatched)",status="404"} 1.0' in text
    assert 'semafore_http_request_duration_seconds_count{route="/healthz"} 3.0' in text
    commits = re.search(r"^semafore_db_commit_batch_units_count (\S+)$", text, re.MULTILINE)
    assert commits and float(commits.group(1)) >= 1  # features may commit at start-up too
    assert re.search(r"^semafore_db_writer_queue_depth \d", text, re.MULTILINE)


async def test_each_app_has_its_own_registry(start_server: Callable[..., Any]) -> None:
    first = await start_server()
    second = await start_server()
    assert first.app[METRICS].registry is not second.app[METRICS].registry


async def test_a_feature_can_register_its_own_metric(
    server: RunningServer, client: aiohttp.ClientSession
) -> None:
    counter = server.app[METRICS].counter("semafore_test_events_total", "Test events.", ["kind"])
    counter.labels("demo").inc()
    assert 'semafore_test_events_total{kind="demo"} 1.0' in await scrape(client)


async def test_with_a_token_file_every_scrape_needs_the_token(
    appliance: Appliance, start_server: Callable[..., Any], ca_ssl_context: Any
) -> None:
    token = secrets.token_urlsafe(32)
    (appliance.data_dir / "metrics.token").write_text(token + "\n")
    running = await start_server(appliance.configure(metrics={"token_file": "metrics.token"}))
    async with client_session(running.url, ca_ssl_context) as client:
        async with client.get("/metrics") as response:
            assert response.status == 401
            assert (await response.json(content_type=None))["code"] == "unauthenticated"
        bad = {"Authorization": "Bearer " + "x" * len(token)}
        async with client.get("/metrics", headers=bad) as response:
            assert response.status == 401
        assert "semafore_http_requests_total" in await scrape(
            client, headers={"Authorization": f"Bearer {token}"}
        )


def test_without_a_token_only_loopback_peers_may_scrape() -> None:
    for peer in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(peer)
        check_access(None, peer, "")
    for peer in ("10.0.0.5", "192.168.1.1", "fe80::1%eth0", "", None, "garbage"):
        assert not is_loopback(peer)
        with pytest.raises(Forbidden):
            check_access(None, peer, "")


def test_with_a_token_the_peer_does_not_matter() -> None:
    check_access("t" * 40, "10.0.0.5", "Bearer " + "t" * 40)
    check_access("t" * 40, "10.0.0.5", "bearer " + "t" * 40)
    with pytest.raises(Unauthenticated):
        check_access("t" * 40, "127.0.0.1", "")
    with pytest.raises(Unauthenticated):
        check_access("t" * 40, "127.0.0.1", "Basic " + "t" * 40)
