"""Several `catalog-service serve` processes on one database share the work exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from .conftest import free_port
from .processes import CATALOG_SERVICE, serve_env, wait_for_health
from .upstream import Upstream, openapi_30

PROJECTS = 100


async def start_replicas(
    count: int, database_url: str, tmp_path: Path, **extra: str
) -> list[subprocess.Popen[bytes]]:
    replicas = []
    for i in range(count):
        port = free_port()
        env = serve_env(database_url, port, CATALOG_ALLOWED_NETWORKS="127.0.0.0/8", **extra)
        with (tmp_path / f"replica-{i}.log").open("wb") as log:
            process = subprocess.Popen(
                [CATALOG_SERVICE, "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        replicas.append(process)
    for process in replicas:
        await asyncio.to_thread(wait_for_health, process.base_url, process, 60)  # type: ignore[attr-defined]
    return replicas


def stop(replicas: list[subprocess.Popen[bytes]]) -> None:
    for process in replicas:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in replicas:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


async def register_many(db: asyncpg.Connection, base: str) -> None:
    # Straight into the table: the point is what the replicas do, not the API.
    await db.executemany(
        "INSERT INTO projects (name, swagger_url, owner) VALUES ($1, $2, 'admin')",
        [(f"p-{i:03d}", f"{base}/docs/p-{i:03d}") for i in range(PROJECTS)],
    )


async def wait_all_checked(db: asyncpg.Connection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await db.fetchval("SELECT count(*) FROM projects WHERE last_checked_at IS NULL") == 0:
            return
        await asyncio.sleep(0.2)
    left = await db.fetchval("SELECT count(*) FROM projects WHERE last_checked_at IS NULL")
    raise AssertionError(f"{left} projects were never collected")


async def assert_each_collected_once(db: asyncpg.Connection, replicas_used: int) -> None:
    counts = await db.fetch("SELECT project_id, count(*) AS n FROM collections GROUP BY project_id")
    assert len(counts) == PROJECTS
    assert {row["n"] for row in counts} == {1}
    assert await db.fetchval("SELECT count(*) FROM projects WHERE status = 'valid'") == PROJECTS
    assert await db.fetchval("SELECT count(DISTINCT replica) FROM collections") == replicas_used


@pytest.mark.slow
async def test_three_replicas_collect_a_hundred_projects_exactly_once(
    database_url: str, db: asyncpg.Connection, aiohttp_server: Any, tmp_path: Path
) -> None:
    up = Upstream()
    up.delay = 0.05
    for i in range(PROJECTS):
        up.serve(f"p-{i:03d}", openapi_30(title=f"API {i}"))
    server = await aiohttp_server(up.app)
    replicas = await start_replicas(3, database_url, tmp_path)
    try:
        await register_many(db, str(server.make_url("")).rstrip("/"))
        await wait_all_checked(db, timeout=90)
    finally:
        await asyncio.to_thread(stop, replicas)
    await assert_each_collected_once(db, replicas_used=3)
    assert all(up.hits[f"/docs/p-{i:03d}"] == 1 for i in range(PROJECTS))


@pytest.mark.slow
async def test_work_of_a_replica_killed_mid_run_is_finished_by_the_others(
    database_url: str, db: asyncpg.Connection, aiohttp_server: Any, tmp_path: Path
) -> None:
    up = Upstream()
    up.delay = 0.4  # slow enough that the victim holds leases when it dies
    for i in range(PROJECTS):
        up.serve(f"p-{i:03d}", openapi_30(title=f"API {i}"))
    server = await aiohttp_server(up.app)
    replicas = await start_replicas(3, database_url, tmp_path, CATALOG_LEASE_SECONDS="4")
    try:
        await register_many(db, str(server.make_url("")).rstrip("/"))
        victim = replicas[0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            held = await db.fetchval(
                "SELECT count(*) FROM projects WHERE lease_owner LIKE $1", f"%:{victim.pid}:%"
            )
            if held:
                break
            await asyncio.sleep(0.05)
        assert held, "the victim never took work"
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        await wait_all_checked(db, timeout=120)
    finally:
        await asyncio.to_thread(stop, replicas)
    # What the victim held when it died was collected by the others, once.
    counts = await db.fetch("SELECT project_id, count(*) AS n FROM collections GROUP BY project_id")
    assert len(counts) == PROJECTS and {row["n"] for row in counts} == {1}
    assert await db.fetchval("SELECT count(*) FROM projects WHERE status = 'valid'") == PROJECTS
    assert await db.fetchval("SELECT count(*) FROM projects WHERE lease_owner IS NOT NULL") == 0


async def leases_held_by(db: asyncpg.Connection, process: subprocess.Popen[bytes]) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM projects WHERE lease_owner LIKE $1", f"%:{process.pid}:%"
    )
    return count


async def wait_for_leases(db: asyncpg.Connection, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await leases_held_by(db, process):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica never took work")


@pytest.mark.slow
async def test_a_replica_stopped_with_sigterm_hands_its_projects_back_at_once(
    database_url: str, db: asyncpg.Connection, aiohttp_server: Any, tmp_path: Path
) -> None:
    up = Upstream()
    up.delay = 20  # every download hangs well past the stop
    for i in range(PROJECTS):
        up.serve(f"p-{i:03d}", openapi_30(title=f"API {i}"))
    server = await aiohttp_server(up.app)
    [first] = await start_replicas(1, database_url, tmp_path)
    try:
        await register_many(db, str(server.make_url("")).rstrip("/"))
        await wait_for_leases(db, first)
        began = time.monotonic()
        os.killpg(first.pid, signal.SIGTERM)
        await asyncio.to_thread(first.wait, 10)
        assert time.monotonic() - began < 10
        # Nothing is held any more, and what was held is due now, not in 11 minutes.
        assert await leases_held_by(db, first) == 0
        assert await db.fetchval("SELECT count(*) FROM replicas") == 0
        assert await db.fetchval("SELECT count(*) FROM projects WHERE next_check_at > now()") == 0

        up.delay = 0
        began = time.monotonic()
        second = await start_replicas(1, database_url, tmp_path)
        try:
            await wait_all_checked(db, timeout=30)
        finally:
            await asyncio.to_thread(stop, second)
        assert time.monotonic() - began < 30
    finally:
        await asyncio.to_thread(stop, [first])


@pytest.mark.slow
async def test_after_kill_9_a_restarted_replica_collects_what_the_dead_one_held_within_30_s(
    database_url: str, db: asyncpg.Connection, aiohttp_server: Any, tmp_path: Path
) -> None:
    up = Upstream()
    up.delay = 60
    for i in range(PROJECTS):
        up.serve(f"p-{i:03d}", openapi_30(title=f"API {i}"))
    server = await aiohttp_server(up.app)
    # The default lease: fetch timeout + validation timeout + 60 s, eleven minutes.
    [victim] = await start_replicas(1, database_url, tmp_path)
    try:
        await register_many(db, str(server.make_url("")).rstrip("/"))
        await wait_for_leases(db, victim)
        held = await leases_held_by(db, victim)
        os.killpg(victim.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)
        up.delay = 0
        began = time.monotonic()
        restarted = await start_replicas(1, database_url, tmp_path)
        try:
            await wait_all_checked(db, timeout=30)
        finally:
            await asyncio.to_thread(stop, restarted)
        assert held > 0 and time.monotonic() - began < 30
    finally:
        await asyncio.to_thread(stop, [victim])
    assert await db.fetchval("SELECT count(*) FROM projects WHERE status = 'valid'") == PROJECTS
