"""Shared fixtures: a real PostgreSQL, a clean schema per run, clean tables per test."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestClient

from catalog_service.app import create_app
from catalog_service.embedded import EmbeddedPostgres
from catalog_service.settings import Settings
from catalog_service.store import tokens
from catalog_service.store.db import init_connection, migrate

ADMIN_TOKEN = "test-admin-token"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Real documents of others, copied into the repository with their provenance (specs/README.md).
REAL_SPECS = Path(__file__).resolve().parent / "specs"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def _with_database(url: str, name: str) -> str:
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
        conn = await asyncpg.connect(_with_database(server_url, name))
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
        yield _with_database(server_url, name)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
