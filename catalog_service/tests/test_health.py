"""/api/health follows the database: 503 while it is down, 200 once it is back."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from catalog_service.embedded import EmbeddedPostgres
from catalog_service.keys import LIVENESS, POOL
from catalog_service.settings import Settings
from catalog_service.store.db import FRESH_SECONDS

from .conftest import routed


async def test_health_is_ok_with_a_reachable_database(client: Any) -> None:
    response = await client.get("/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


async def test_a_check_while_the_database_is_trusted_is_answered_before_routing_as_routed_ones_are(
    client: Any,
) -> None:
    """Probes from every load balancer and orchestrator: while the database's last
    answer is trusted, a check is answered without the router, connexion or a
    middleware (it cost twice a cached read), and says exactly what the long way says."""
    app = client.server.app
    routes = routed(app)

    def seen(response: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Date", "Server"))
        return response.status, headers, body

    assert not app[LIVENESS].trusted  # nothing asked the database yet
    first = await client.get("/api/health")
    long_way = seen(first, await first.read())
    assert routes == ["/api/health"]
    assert app[LIVENESS].trusted
    second = await client.get("/api/health")
    assert seen(second, await second.read()) == long_way
    assert routes == ["/api/health"]
    assert long_way[2] == b'{"status": "ok", "database": "ok"}\n'
    metrics = await (await client.get("/metrics")).text()
    assert 'catalog_http_requests_total{operation="GET /api/health",status="200"} 2.0' in metrics


async def test_health_is_503_while_the_database_is_stopped_and_recovers_without_restart(
    make_client: Any, settings: Settings, tmp_path: Path, admin: dict[str, str]
) -> None:
    server = EmbeddedPostgres(tmp_path / "own")
    url = server.start()
    try:
        client = await make_client(dataclasses.replace(settings, database_url=url))
        assert (await client.get("/api/health")).status == 200

        server.stop()
        # A success speaks for the database for a second at most.
        stopped = time.monotonic()
        while (down := await client.get("/api/health")).status == 200:
            assert time.monotonic() - stopped < FRESH_SECONDS + 0.5
            await asyncio.sleep(0.05)
        assert down.status == 503
        assert down.content_type == "application/problem+json"
        assert (await down.json(content_type=None))["detail"] == "the database cannot be reached"
        # Every other route says the same, as a problem, not a crash.
        listed = await client.get("/api/projects")
        assert listed.status == 503
        assert listed.content_type == "application/problem+json"

        assert server.start() == url
        up = await client.get("/api/health")
        assert up.status == 200
        assert (await client.get("/api/projects")).status == 200
    finally:
        server.stop()


async def test_checks_trust_a_success_for_a_second_then_share_one_round_trip(client: Any) -> None:
    pool = client.server.app[POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size() - 1)]
    checks: list[asyncio.Task[Any]] = []
    try:
        assert (await client.get("/api/health")).status == 200
        held.append(await pool.acquire())
        # No connection is free, and the database answered a moment ago.
        assert (await client.get("/api/health")).status == 200

        await asyncio.sleep(FRESH_SECONDS)
        checks = [asyncio.create_task(client.get("/api/health")) for _ in range(20)]
        await asyncio.sleep(0.3)
        # Every check waits for the one round trip, itself waiting for a connection.
        assert not any(check.done() for check in checks)
        assert [task.get_name() for task in asyncio.all_tasks()].count("database-liveness") == 1
    finally:
        for conn in held:
            await pool.release(conn)
    assert [response.status for response in await asyncio.gather(*checks)] == [200] * 20
