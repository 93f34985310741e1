"""Shared fixtures: a real PostgreSQL, a clean schema per run, clean tables per test."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.app import create_app
from catalog_service.embedded import EmbeddedPostgres
from catalog_service.settings import Settings
from catalog_service.store import tokens
from catalog_service.store.db import init_connection, migrate

from .upstream import PARKEREN, SWAGGER_2, WEATHER, Upstream

ADMIN_TOKEN = "test-admin-token"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Real documents of others, copied into the repository with their provenance (specs/README.md).
REAL_SPECS = Path(__file__).resolve().parent / "specs"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def with_database(url: str, name: str) -> str:
    """The same server, another database (works for TCP and unix-socket URLs)."""
    parsed = yarl.URL(url)
    return str(parsed.with_path("/" + name).with_query(parsed.query))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: CATALOG_TEST_DATABASE_URL's, or an embedded one for this run."""
    external = os.environ.get("CATALOG_TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A database created (and migrated) for this run only, dropped at its end."""
    name = f"catalog_test_{uuid.uuid4().hex[:12]}"

    async def setup() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def teardown() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(setup())
    try:
        yield with_database(server_url, name)
    finally:
        asyncio.run(teardown())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database, whose tables are emptied before each test."""
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    if tables:
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        workers=1,
        fetch_timeout=5,
        validation_timeout=60,
        # Documents of hundreds of thousands of nodes are read and judged in seconds,
        # and would take tens more to lint: the tests of such documents are about
        # their verdicts (tests/test_design_rules.py tests the limit itself).
        lint_timeout=5,
        # The tests of rate limits set their own; everything else writes freely.
        write_rate=1_000_000,
        anonymous_validate_rate=1_000_000,
    )


@pytest.fixture
def make_client(aiohttp_client: Any, db: asyncpg.Connection) -> Any:
    async def make(settings: Settings) -> TestClient:
        # Workers start on first use in tests: most tests never validate anything.
        app: web.Application = create_app(settings, validate_responses=True, prestart_validators=False)
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client: Any, settings: Settings) -> TestClient:
    return await make_client(settings)


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def make_token(db: asyncpg.Connection) -> Any:
    async def make(name: str, *, admin: bool = False) -> dict[str, str]:
        token = await tokens.create_token(db, name=name, admin=admin)
        return {"Authorization": f"Bearer {token}"}

    return make


def routed(app: web.Application) -> list[str]:
    """The path and query of every request the app's router sees from now on (what
    the front door answers before routing never reaches it)."""
    seen: list[str] = []
    resolve = app.router.resolve

    async def counted(request: web.Request) -> Any:
        seen.append(request.path_qs)
        return await resolve(request)

    app.router.resolve = counted  # type: ignore[method-assign]
    return seen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the collector and the catalog, against real upstreams ---------------------------

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def collector_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, allowed_networks=LOOPBACK, fetch_timeout=2, max_spec_bytes=2 * 1024 * 1024
    )


@pytest.fixture
async def upstream(aiohttp_server: Any) -> tuple[Upstream, TestServer]:
    up = Upstream()
    server = await aiohttp_server(up.app)
    return up, server


@pytest.fixture
async def collecting(make_client: Any, collector_settings: Settings) -> TestClient:
    """A client of an app whose collector may reach the tests' upstreams on loopback."""
    return await make_client(collector_settings)


async def register(client: TestClient, admin: dict[str, str], name: str, url: str) -> None:
    response = await client.post("/api/projects", json={"name": name, "swagger_url": url}, headers=admin)
    assert response.status == 201, await response.text()


async def collected(
    client: TestClient, name: str, *, after: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """The project once it has been checked (again, if ``after`` is its previous check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        project = await (await client.get(f"/api/projects/{name}")).json()
        if project["last_checked_at"] is not None and project["last_checked_at"] != after:
            return dict(project)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was not collected within {timeout}s")


async def attempts(client: TestClient, name: str) -> list[dict[str, Any]]:
    body = await (await client.get(f"/api/projects/{name}/collections")).json()
    return list(body["items"])


@pytest.fixture
async def catalog(
    make_client: Any, settings: Settings, aiohttp_server: Any, admin: dict[str, str]
) -> tuple[TestClient, Upstream, TestServer]:
    """A catalog with four APIs: valid Swagger 2.0, valid 3.0 (Dutch), valid 3.1 (English), and a broken one."""
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(dataclasses.replace(settings, allowed_networks=LOOPBACK))
    for name, body, tags in [
        ("afval", SWAGGER_2, ["afval"]),
        ("parkeren", PARKEREN, ["mobiliteit", "parkeren"]),
        ("weather", WEATHER, ["environment"]),
        ("broken", b"openapi: 3.0.0\ninfo: {title: Broken}\npaths: {}\n", ["mobiliteit"]),
    ]:
        url = str(
            server.make_url(
                up.serve(name, body, "text/yaml" if isinstance(body, bytes) else "application/json")
            )
        )
        response = await client.post(
            "/api/projects", json={"name": name, "swagger_url": url, "tags": tags}, headers=admin
        )
        assert response.status == 201
    for name in ["afval", "parkeren", "weather", "broken"]:
        await collected(client, name)
    return client, up, server
