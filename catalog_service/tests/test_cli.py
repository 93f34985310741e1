"""The command line and the README's promises: make run, token create, migrate, lint, diff."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from catalog_service.store.db import available_migrations, migrate

from .conftest import REPO_ROOT, free_port, with_database
from .processes import CATALOG_SERVICE, run_cli, running, serve_env, service_env
from .upstream import PARKEREN


@pytest.mark.slow
def test_make_run_serves_health_on_the_configured_port_and_stops_postgres_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = service_env(CATALOG_PORT=str(port), CATALOG_DATA_DIR=str(data_dir))
    with running(
        ["make", "--no-print-directory", "run"],
        env=env,
        cwd=REPO_ROOT,
        base_url=f"http://127.0.0.1:{port}",
        log=tmp_path / "make-run.log",
        timeout=120,
    ) as process:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as response:
            assert json.load(response) == {"status": "ok", "database": "ok"}
        assert (data_dir / "pg" / "postmaster.pid").exists()
        # A command beside `serve` shares the embedded server, leaves it up, and says
        # nothing about stopping it.
        token = run_cli("token", "create", "beside-serve", CATALOG_DATA_DIR=str(data_dir))
        assert token.returncode == 0, token.stderr
        assert token.stdout.strip().startswith("cat_")
        assert "stopped" not in token.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as response:
            assert response.status == 200
    assert process.returncode is not None
    # A clean stop: the embedded server removed its pid file on the way out.
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    assert (data_dir / "pg" / "PG_VERSION").exists()


async def test_token_create_prints_a_token_that_can_register_a_project(
    client: Any, database_url: str, db: asyncpg.Connection
) -> None:
    result = await asyncio.to_thread(run_cli, "token", "create", "team-parkeren", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("cat_") and len(token) > 30
    # Only a hash is stored, never the token itself.
    stored = await db.fetchrow("SELECT * FROM tokens WHERE name = 'team-parkeren'")
    assert token.encode() not in b"".join(str(v).encode() for v in stored.values())

    response = await client.post(
        "/api/projects",
        json={"name": "parkeren", "swagger_url": "https://example.org/openapi.json"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 201
    assert (await response.json())["owner"] == "team-parkeren"

    again = await asyncio.to_thread(run_cli, "token", "create", "team-parkeren", DATABASE_URL=database_url)
    assert again.returncode != 0
    assert "exists already" in again.stderr


def test_a_wrong_setting_stops_start_up_with_one_line_naming_it() -> None:
    result = run_cli("serve", CATALOG_PORT="eighty", DATABASE_URL="postgresql://nowhere/x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CATALOG_PORT" in lines[0]
    result = run_cli("migrate", CATALOG_ALLOWED_NETWORKS="10.0.0.0/8,not-a-net")
    assert result.returncode == 2 and "CATALOG_ALLOWED_NETWORKS" in result.stderr


def test_migrate_reports_nothing_left_on_a_migrated_database(database_url: str) -> None:
    result = run_cli("migrate", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "applied 0 migration(s)"


async def test_replicas_migrating_at_once_apply_each_migration_once(server_url: str) -> None:

    name = "catalog_migrate_race"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conns = [await asyncpg.connect(with_database(server_url, name)) for _ in range(3)]
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(available_migrations())]
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in available_migrations()]
        for conn in conns:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.slow
def test_json_logs_have_one_object_per_line_an_access_line_per_request_and_no_secret(
    tmp_path: Path, database_url: str, db: asyncpg.Connection
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret = "cat_this-token-must-never-be-logged"
    env = serve_env(database_url, port, CATALOG_LOG_FORMAT="json")
    log = tmp_path / "serve.log"
    with running([CATALOG_SERVICE, "serve"], env=env, base_url=base, log=log):
        request = urllib.request.Request(
            f"{base}/api/catalog?q=parkeren&access_token={secret}",
            headers={"Authorization": f"Bearer {secret}"},
        )
        try:
            urllib.request.urlopen(request)
        except urllib.error.HTTPError as refused:
            assert refused.code == 400  # access_token is no parameter of the catalog
        urllib.request.urlopen(f"{base}/api/projects").close()
        # A request line aiohttp cannot parse is answered by the server itself, before
        # any middleware: as problem+json too, and without quoting the request.
        try:
            urllib.request.urlopen(f"{base}/api/catalog?api_key={secret}&q={'a' * 9000}")
        except urllib.error.HTTPError as too_long:
            assert too_long.code == 400
            assert too_long.headers.get_content_type() == "application/problem+json"
            assert "longer than the server accepts" in json.load(too_long)["detail"]
        else:
            raise AssertionError("a 9 KB request line was accepted")

    text = log.read_text()
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    listening = [line for line in lines if line["message"].startswith("listening on")]
    assert [line["message"] for line in listening] == [f"listening on http://127.0.0.1:{port}"]
    access = [line for line in lines if line["logger"] == "catalog_service.access"]
    seen = {(line["method"], line["path"], line["status"]) for line in access}
    assert {("GET", "/api/catalog", 400), ("GET", "/api/projects", 200)} <= seen
    assert all(isinstance(line["duration_ms"], float) for line in access)


async def test_an_applied_migration_edited_later_stops_start_up_with_a_clear_message(server_url: str) -> None:

    name = "catalog_migration_edited"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    try:
        conn = await asyncpg.connect(url)
        await migrate(conn)
        stored = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY version")
        assert [(r["name"], r["checksum"]) for r in stored] == [
            (m.name, m.checksum) for m in available_migrations()
        ]
        # As if 0002's file had been edited since it was applied here.
        await conn.execute("UPDATE schema_migrations SET checksum = 'something else' WHERE version = 2")
        await conn.close()

        for command in (["migrate"], ["serve", "--port", str(free_port())]):
            result = await asyncio.to_thread(run_cli, *command, DATABASE_URL=url)
            assert result.returncode == 1, result.stderr
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("error: migration 0002_") and "changed after it was applied" in last
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_lint_and_diff_judge_local_files_as_the_catalog_does(tmp_path: Path) -> None:
    v1, v2, broken = tmp_path / "v1.json", tmp_path / "v2.yaml", tmp_path / "broken.yaml"
    v1.write_text(json.dumps(PARKEREN))
    revised = copy.deepcopy(PARKEREN)
    revised["info"]["version"] = "2.2.0"
    del revised["paths"]["/vergunningen"]["post"]
    v2.write_text(yaml.safe_dump(revised))
    broken.write_text("openapi: 3.0.3\ninfo: {title: Kapot}\npaths: {}\n")

    # The design rules report, and 1 because it has error-level findings.
    linted = run_cli("lint", str(v1))
    assert linted.returncode == 1, linted.stderr
    assert "score 88" in linted.stdout and "nlgov:missing-header" in linted.stdout
    report = json.loads(run_cli("lint", "--format", "json", str(v1)).stdout)
    assert report["score"] == 88 and report["file"] == str(v1)

    # What changed, grouped by operation; 1 because something breaks.
    changed = run_cli("diff", str(v1), str(v2))
    assert changed.returncode == 1, changed.stderr
    lines = changed.stdout.splitlines()
    # (the removal, and breaking while the major version stayed 2)
    assert lines[0] == f"{v1} -> {v2}: 3 changes (2 breaking, 0 possibly breaking, 1 info)"
    assert "POST /vergunningen" in lines
    removed = lines[lines.index("POST /vergunningen") + 1].split()
    assert removed[:2] == ["breaking", "api-removed-without-deprecation"]
    as_json = json.loads(run_cli("diff", "--format", "json", str(v1), str(v2)).stdout)
    assert {c["id"] for c in as_json["changes"]} >= {"version-changed", "api-removed-without-deprecation"}
    assert run_cli("diff", "--fail-on", "never", str(v1), str(v2)).returncode == 0
    # The other way round only adds an operation: nothing breaks.
    assert run_cli("diff", str(v2), str(v1)).returncode == 0
    assert run_cli("diff", "--fail-on", "possibly-breaking", str(v2), str(v1)).returncode == 0

    refused = run_cli("diff", str(v1), str(broken))
    assert refused.returncode == 2 and "not a valid document" in refused.stderr
    missing = run_cli("diff", str(v1), str(tmp_path / "nowhere.yaml"))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
