"""POST /api/validate and `catalog-service collect`: the same pipeline, on demand."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ipaddress
import json
import time
from typing import Any

import asyncpg
import psutil
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.settings import Settings

from .conftest import REAL_SPECS, collected, register
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
    verdict = await twilio.json()
    assert {key: verdict[key] for key in ("valid", "spec_format", "errors")} == {
        "valid": True,
        "spec_format": "openapi-3.0",
        "errors": [],
    }
    # OpenAPI 3.x comes with its API design rules report (Swagger 2.0, above, without).
    assert verdict["lint"]["ruleset"].startswith("NLGov API Design Rules") and verdict["lint"]["findings"]

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
    assert fetched["valid"] is True and fetched["spec_format"] == "openapi-3.0" and fetched["errors"] == []
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


REDOS = {
    "openapi": "3.0.3",
    "info": {"title": "ReDoS", "version": "1"},
    "paths": {},
    "components": {"schemas": {"S": {"type": "string", "pattern": "^(a|a)*$", "default": "a" * 40 + "!"}}},
}


async def test_a_catastrophic_pattern_holds_no_worker_and_delays_nothing(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
) -> None:
    up, server = upstream
    client = await make_client(collector_settings)
    began = time.monotonic()
    answers = await asyncio.gather(*(client.post("/api/validate", json=REDOS) for _ in range(2)))
    for answer in answers:
        verdict = await answer.json()
        assert verdict["valid"] is False
        # The true verdict (the default does not match), reached at once: the fast path
        # matches patterns in linear time, the reference with a deadline.
        assert "^(a|a)*$" in verdict["errors"][0]["message"]
    # Python's re would take longer than the age of the universe on that default.
    assert time.monotonic() - began < 10

    began = time.monotonic()
    trivial = await (await client.post("/api/validate", json=SWAGGER_2)).json()
    assert trivial["valid"] is True and time.monotonic() - began < 5
    await register(client, admin, "nieuw", str(server.make_url(up.serve("nieuw", openapi_30()))))
    assert (await collected(client, "nieuw", timeout=10))["status"] == "valid"


async def test_a_flood_of_anonymous_checks_is_turned_away_and_delays_no_collection(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
) -> None:
    up, server = upstream
    client = await make_client(
        dataclasses.replace(collector_settings, validate_queue=1, max_spec_bytes=50 * 1024 * 1024)
    )
    slow = json.dumps(openapi_30(title="Traag", paths=8_000)).encode()
    flood = [
        asyncio.ensure_future(
            client.post(
                "/api/validate",
                data=io.BytesIO(slow + b" " * i),
                headers={"Content-Type": "application/json"},
            )
        )
        for i in range(8)
    ]
    await asyncio.sleep(0.5)
    # The flood waits for the checks' own worker; a team's collection does not.
    began = time.monotonic()
    await register(client, admin, "team", str(server.make_url(up.serve("team", openapi_30()))))
    assert (await collected(client, "team", timeout=20))["status"] == "valid"
    collected_after = time.monotonic() - began
    answers = await asyncio.gather(*flood)
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(429) >= 5 and set(statuses) <= {200, 429}, statuses
    turned_away = next(answer for answer in answers if answer.status == 429)
    assert int(turned_away.headers["Retry-After"]) > 0
    assert turned_away.content_type == "application/problem+json"
    assert collected_after < 10


async def test_an_anonymous_check_has_seconds_and_a_team_has_the_full_time(
    make_client: Any, collector_settings: Settings, admin: dict[str, str]
) -> None:
    client = await make_client(
        dataclasses.replace(
            collector_settings, anonymous_validation_timeout=0.3, max_spec_bytes=50 * 1024 * 1024
        )
    )
    # Seconds to read and judge, even on the fast path.
    slow = json.dumps(openapi_30(title="Traag", paths=150_000)).encode()
    headers = {"Content-Type": "application/json"}
    anonymous = await client.post("/api/validate", data=io.BytesIO(slow), headers=headers)
    assert anonymous.status == 503 and anonymous.content_type == "application/problem+json"
    assert "no verdict" in (await anonymous.json())["detail"] and anonymous.headers["Retry-After"]
    team = await client.post("/api/validate", data=io.BytesIO(slow), headers={**headers, **admin})
    assert team.status == 200 and (await team.json())["valid"] is True


async def test_yaml_that_expands_to_far_more_text_than_it_has_is_refused_unexpanded(
    client: TestClient,
) -> None:
    # 267 KB: one 256 KB string behind 1,000 aliases (262 MB once expanded).
    bomb = "a: &a " + "x" * 256 * 1024 + "\nopenapi: 3.0.3\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
    process = psutil.Process()
    before = process.memory_info().rss
    verdict = await (
        await client.post("/api/validate", data=bomb.encode(), headers={"Content-Type": "application/yaml"})
    ).json()
    assert verdict["valid"] is False and "expands to more than" in verdict["errors"][0]["message"]
    assert process.memory_info().rss - before < 50 * 1024 * 1024
