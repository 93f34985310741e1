"""POST /api/validate and `catalog-service collect`: the same pipeline, on demand."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from catalog_service.settings import Settings

from .conftest import REAL_SPECS
from .processes import run_cli
from .upstream import SWAGGER_2, SWAGGER_2_INVALID, SWAGGER_2_YAML, YAML_BOMB, Upstream, openapi_30


async def test_a_posted_json_or_yaml_document_is_validated_without_a_token_and_nothing_is_stored(
    client: TestClient, db: asyncpg.Connection
) -> None:
    good = await client.post("/api/validate", json=SWAGGER_2)
    assert good.status == 200
    assert await good.json() == {"valid": True, "spec_format": "swagger-2.0", "errors": []}

    yaml_doc = await client.post(
        "/api/validate", data=SWAGGER_2_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert (await yaml_doc.json())["valid"] is True

    real = (REAL_SPECS / "twilio.com__twilio_chat_v2.yaml").read_bytes()
    twilio = await client.post("/api/validate", data=real, headers={"Content-Type": "text/yaml"})
    assert await twilio.json() == {"valid": True, "spec_format": "openapi-3.0", "errors": []}

    bad = await (await client.post("/api/validate", json=SWAGGER_2_INVALID)).json()
    assert bad["valid"] is False and bad["spec_format"] == "swagger-2.0"
    assert bad["errors"] and all(set(e) == {"message", "path"} for e in bad["errors"])

    bomb = await (
        await client.post("/api/validate", data=YAML_BOMB, headers={"Content-Type": "text/yaml"})
    ).json()
    assert bomb["valid"] is False and "alias" in bomb["errors"][0]["message"]

    assert await db.fetchval("SELECT count(*) FROM documents") == 0


async def test_validating_a_url_needs_a_token_and_obeys_the_network_policy(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    url = str(server.make_url(up.serve("doc", openapi_30())))

    strict = await make_client(settings)
    anonymous = await strict.post("/api/validate", json={"swagger_url": url})
    assert anonymous.status == 401
    refused = await (await strict.post("/api/validate", json={"swagger_url": url}, headers=admin)).json()
    assert refused["valid"] is False and refused["errors"][0]["message"].startswith("refused")
    assert sum(up.hits.values()) == 0

    open_client = await make_client(
        dataclasses.replace(settings, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    fetched = await (await open_client.post("/api/validate", json={"swagger_url": url}, headers=admin)).json()
    assert fetched == {"valid": True, "spec_format": "openapi-3.0", "errors": []}
    bad_url = await open_client.post(
        "/api/validate", json={"swagger_url": "file:///etc/passwd"}, headers=admin
    )
    assert bad_url.status == 400


async def test_a_document_over_the_size_limit_is_413(make_client: Any, settings: Settings) -> None:
    client = await make_client(dataclasses.replace(settings, max_spec_bytes=100_000))
    big = json.dumps(openapi_30(paths=2_000)).encode()
    response = await client.post("/api/validate", data=big, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert response.content_type == "application/problem+json"


async def test_cli_collect_prints_a_line_per_project_and_fails_when_one_fails(
    client: TestClient, admin: dict[str, str], aiohttp_server: Any, database_url: str, db: asyncpg.Connection
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    # Registered straight into the table so that no server collects them first.
    await db.execute(
        "INSERT INTO projects (name, swagger_url, owner, next_check_at) VALUES ($1, $2, 'admin', 'infinity'), ($3, $4, 'admin', 'infinity')",
        "good",
        str(server.make_url(up.serve("good", openapi_30()))),
        "broken",
        str(server.make_url("/status/500")),
    )
    env = {"DATABASE_URL": database_url, "CATALOG_ALLOWED_NETWORKS": "127.0.0.0/8"}
    one = await asyncio.to_thread(run_cli, "collect", "good", **env)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == "good: changed (valid)"

    every = await asyncio.to_thread(run_cli, "collect", "--all", **env)
    assert every.returncode == 1
    assert every.stdout.splitlines() == [
        "broken: unreachable (unreachable): HTTP 500 Internal Server Error",
        "good: unchanged (valid)",
    ]
    collections = await (await client.get("/api/projects/good/collections")).json()
    assert [c["trigger"] for c in collections["items"]] == ["cli", "cli"]

    unknown = await asyncio.to_thread(run_cli, "collect", "nobody", **env)
    assert unknown.returncode == 1 and "no project named 'nobody'" in unknown.stdout
