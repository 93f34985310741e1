"""/api/health follows the database: 503 while it is down, 200 once it is back."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from catalog_service.embedded import EmbeddedPostgres
from catalog_service.settings import Settings


async def test_health_is_ok_with_a_reachable_database(client: Any) -> None:
    response = await client.get("/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


async def test_health_is_503_while_the_database_is_stopped_and_recovers_without_restart(
    make_client: Any, settings: Settings, tmp_path: Path, admin: dict[str, str]
) -> None:
    server = EmbeddedPostgres(tmp_path / "own")
    url = server.start()
    try:
        client = await make_client(dataclasses.replace(settings, database_url=url))
        assert (await client.get("/api/health")).status == 200

        server.stop()
        down = await client.get("/api/health")
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
