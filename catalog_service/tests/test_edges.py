"""Hardened edges: what an attacker sends gets a 4xx or a closed connection, never a 5xx,
and nothing the service shows gives away a secret or a Host header it was sent."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from catalog_service.collector.fetch import NetworkPolicy
from catalog_service.settings import Settings

from .conftest import ADMIN_TOKEN, free_port
from .processes import CATALOG_SERVICE, running, service_env


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
    env = service_env(
        DATABASE_URL=database_url,
        CATALOG_ADMIN_TOKEN=ADMIN_TOKEN,
        CATALOG_PORT=str(port),
        CATALOG_WORKERS="1",
        CATALOG_HEADER_TIMEOUT="1",
    )
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
