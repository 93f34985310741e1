"""Hardened edges: what an attacker sends gets a 4xx or a closed connection, never a 5xx,
and nothing the service shows gives away a secret or a Host header it was sent."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.collector.fetch import NetworkPolicy
from catalog_service.settings import Settings

from .conftest import collected, free_port, register
from .processes import CATALOG_SERVICE, running, serve_env
from .upstream import Upstream, openapi_30


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the cloud metadata address
        "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215)
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:127.0.0.1",  # SIIT IPv4-translated
        "::ffff:0:a00:1",
    ],
)
def test_ipv6_forms_that_carry_a_private_ipv4_address_are_refused(address: str) -> None:
    assert NetworkPolicy().allows(address) is False


def test_ipv6_forms_that_carry_a_public_ipv4_address_stay_public() -> None:
    assert NetworkPolicy().allows("64:ff9b::808:808") is True  # NAT64 of 8.8.8.8
    assert NetworkPolicy().allows("2001:4860:4860::8888") is True


async def test_secrets_in_a_swagger_url_query_are_never_shown(
    client: TestClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    url = "https://api.example.org/openapi.json?api_key=s3cret1&access_token=s3cret2&sig=s3cret3&version=2"
    created = await client.post("/api/projects", json={"name": "geheim", "swagger_url": url}, headers=admin)
    assert created.status == 201
    shown = [
        await created.text(),
        await (await client.get("/api/projects/geheim")).text(),
        await (await client.get("/api/projects")).text(),
        await (await client.get("/api/catalog/geheim")).text(),
        await (await client.get("/api/catalog")).text(),
        await (await client.get("/apis/geheim")).text(),
        await (await client.get("/")).text(),
    ]
    for text in shown:
        assert "s3cret" not in text
    assert "version=2" in shown[1] and "api_key=REDACTED" in shown[1]
    # The collector still fetches the real URL.
    assert await db.fetchval("SELECT swagger_url FROM projects") == url


async def test_absolute_urls_come_from_catalog_public_url_not_from_the_host_header(
    make_client: Any, settings: Settings
) -> None:
    client = await make_client(dataclasses.replace(settings, public_url="https://api-catalogus.example.nl"))
    headers = {"Host": "evil.example.com"}
    linkset = await (await client.get("/.well-known/api-catalog", headers=headers)).json()
    assert linkset["linkset"][0]["anchor"] == "https://api-catalogus.example.nl/.well-known/api-catalog"
    feed = await (await client.get("/api/changes.atom", headers=headers)).text()
    assert "evil.example.com" not in feed and "https://api-catalogus.example.nl/api/changes.atom" in feed


@pytest.mark.slow
def test_a_live_service_answers_broken_auth_with_401_and_closes_slow_headers(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    port = free_port()
    env = serve_env(database_url, port, CATALOG_HEADER_TIMEOUT="1")
    with running(
        [CATALOG_SERVICE, "serve"], env=env, base_url=f"http://127.0.0.1:{port}", log=tmp_path / "serve.log"
    ):
        # A non-UTF-8 byte in the Authorization header, on every write route.
        for request_line in (
            "POST /api/projects",
            "PATCH /api/projects/x1",
            "DELETE /api/projects/x1",
            "POST /api/projects/x1/refresh",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(
                    request_line.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                )
                answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 401"), (request_line, answer[:200])
            assert b"application/problem+json" in answer

        # A client that sends its headers a byte at a time is cut off.
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\n")
            closed = False
            for _ in range(20):
                try:
                    sock.sendall(b"X")
                    if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
                    break
                time.sleep(0.25)
        assert closed and time.monotonic() - began < 4


async def test_a_token_may_register_only_so_many_projects_and_an_admin_any_number(
    make_client: Any, settings: Settings, make_token: Any, admin: dict[str, str]
) -> None:
    client = await make_client(dataclasses.replace(settings, max_projects_per_token=3))
    team = await make_token("team-veel")
    for i in range(3):
        body = {"name": f"veel-{i}", "swagger_url": f"https://api.example.org/{i}.json"}
        assert (await client.post("/api/projects", json=body, headers=team)).status == 201
    refused = await client.post(
        "/api/projects",
        json={"name": "veel-3", "swagger_url": "https://api.example.org/3.json"},
        headers=team,
    )
    assert refused.status == 403 and "CATALOG_MAX_PROJECTS_PER_TOKEN" in (await refused.json())["detail"]
    for i in range(3, 6):
        body = {"name": f"beheer-{i}", "swagger_url": f"https://api.example.org/{i}.json"}
        assert (await client.post("/api/projects", json=body, headers=admin)).status == 201


async def test_writes_and_anonymous_checks_are_rate_limited_per_address(
    make_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    client = await make_client(dataclasses.replace(settings, write_rate=8, anonymous_validate_rate=4))
    statuses = []
    for i in range(6):
        body = {"name": f"snel-{i}", "swagger_url": f"https://api.example.org/{i}.json"}
        response = await client.post("/api/projects", json=body, headers=admin)
        statuses.append(response.status)
    assert statuses[:2] == [201, 201] and statuses[-1] == 429
    limited = await client.post(
        "/api/projects",
        json={"name": "snel-x", "swagger_url": "https://api.example.org/x.json"},
        headers=admin,
    )
    assert limited.status == 429 and limited.content_type == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Reads are not limited.
    assert all([(await client.get("/api/projects")).status == 200 for _ in range(20)])

    document = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}
    checks = [(await client.post("/api/validate", json=document)).status for _ in range(4)]
    assert checks[0] == 200 and checks[-1] == 429
    # A token is accountable: its checks are not limited per address.
    assert (await client.post("/api/validate", json=document, headers=admin)).status == 200


async def test_one_owners_slow_upstreams_delay_another_owner_by_one_fetch_at_most(
    make_client: Any,
    collector_settings: Settings,
    make_token: Any,
    upstream: tuple[Upstream, TestServer],
) -> None:
    up, server = upstream
    client = await make_client(
        dataclasses.replace(collector_settings, collect_concurrency=2, fetch_timeout=2)
    )
    hog, neighbour = await make_token("team-traag"), await make_token("team-buur")
    for i in range(12):
        await register(client, hog, f"traag-{i}", str(server.make_url("/hang")))
    await asyncio.sleep(0.5)  # both collection slots hang on the hog's upstreams now
    began = time.monotonic()
    await register(client, neighbour, "buur", str(server.make_url(up.serve("buur", openapi_30()))))
    assert (await collected(client, "buur", timeout=30))["status"] == "valid"
    # One hanging fetch (2 s) at most, not the twelve queued before it (12 s).
    assert time.monotonic() - began < 5


async def test_only_a_bounded_number_of_never_valid_versions_is_kept(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    client = await make_client(dataclasses.replace(collector_settings, keep_invalid_versions=3))
    url = str(server.make_url(up.serve("wisselend", openapi_30(version="1"))))
    await register(client, admin, "wisselend", url)
    last = await collected(client, "wisselend")
    up.serve("wisselend", openapi_30(version="2"))
    await client.post("/api/projects/wisselend/refresh", headers=admin)
    last = await collected(client, "wisselend", after=last["last_checked_at"])
    for i in range(8):
        up.serve("wisselend", os.urandom(4096) + bytes([i]), "application/octet-stream")
        await client.post("/api/projects/wisselend/refresh", headers=admin)
        last = await collected(client, "wisselend", after=last["last_checked_at"])
        assert last["status"] == "invalid"
    kept = await db.fetch("SELECT valid FROM documents ORDER BY collected_at")
    assert [row["valid"] for row in kept] == [True, True, False, False, False]
    # The last valid version is still published, and the newest invalid one explains why not.
    assert (await client.get("/api/catalog/wisselend/openapi.json")).status == 200
    assert (await (await client.get("/api/catalog/wisselend")).json())["validation_errors"]
