"""The collector: registered URLs become validated, stored documents, whatever the URL does."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as reference_validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from catalog_service.collector.records import Records
from catalog_service.domain import Result
from catalog_service.keys import BACKGROUND_POOL, POOL
from catalog_service.settings import Settings
from catalog_service.store import queue
from catalog_service.store.db import create_pool

from .conftest import REAL_SPECS, attempts, collected, register
from .upstream import (
    SWAGGER_2,
    SWAGGER_2_INVALID,
    SWAGGER_2_YAML,
    YAML_BOMB,
    Upstream,
    openapi_30,
)


async def test_swagger_2_json_and_yaml_become_valid_with_their_operations(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    await register(collecting, admin, "afval", str(server.make_url(up.serve("afval.json", SWAGGER_2))))
    await register(
        collecting,
        admin,
        "parkeren",
        str(server.make_url(up.serve("parkeren.yaml", SWAGGER_2_YAML, "text/plain"))),
    )
    afval = await collected(collecting, "afval")
    parkeren = await collected(collecting, "parkeren")
    assert afval["status"] == parkeren["status"] == "valid"
    assert afval["last_changed_at"] == afval["last_checked_at"]
    [attempt] = await attempts(collecting, "afval")
    assert attempt["outcome"] == "changed" and attempt["http_status"] == 200
    assert attempt["trigger"] == "registration" and attempt["error"] is None

    operations = await db.fetch(
        """SELECT o.method, o.path, o.operation_id, o.summary, o.tags, o.deprecated
           FROM operations o JOIN projects p ON p.published_document_id = o.document_id
           WHERE p.name = $1 ORDER BY o.method""",
        "afval",
    )
    assert [(o["method"], o["path"], o["operation_id"], o["deprecated"]) for o in operations] == [
        ("GET", "/containers", "listContainers", False),
        ("POST", "/containers", "addContainer", True),
    ]
    assert operations[0]["tags"] == ["afval"]
    row = await db.fetchrow(
        "SELECT d.spec_format, d.version, d.content_json FROM documents d JOIN projects p ON p.published_document_id = d.id WHERE p.name = 'parkeren'"
    )
    assert row["spec_format"] == "swagger-2.0" and row["version"] == "0.9"
    assert json.loads(row["content_json"]) == yaml.safe_load(SWAGGER_2_YAML)


async def test_the_real_documents_get_exactly_the_status_the_validator_gives(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    client = await make_client(
        dataclasses.replace(collector_settings, workers=2, max_spec_bytes=50 * 1024 * 1024)
    )
    expected = {}
    for i, path in enumerate(sorted(REAL_SPECS.glob("*.*"))):
        if path.name == "README.md":
            continue
        raw = path.read_bytes()
        document = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
        try:
            reference_validate(document)
            expected[f"real-{i}"] = "valid"
        except OpenAPIValidationError:
            expected[f"real-{i}"] = "invalid"
        await register(
            client,
            admin,
            f"real-{i}",
            str(server.make_url(up.serve(path.name, raw, "application/octet-stream"))),
        )
    assert len(expected) == 24 and "invalid" in expected.values()
    got = {name: (await collected(client, name, timeout=120))["status"] for name in expected}
    assert got == expected
    # The invalid one explains itself with pointer paths and messages.
    bad = next(name for name, status in expected.items() if status == "invalid")
    [attempt] = await attempts(client, bad)
    assert attempt["outcome"] == "invalid" and "validation error" in attempt["error"]


async def test_an_invalid_swagger_2_document_is_invalid_with_its_errors(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    await register(
        collecting, admin, "kapot", str(server.make_url(up.serve("kapot.json", SWAGGER_2_INVALID)))
    )
    assert (await collected(collecting, "kapot"))["status"] == "invalid"
    errors = await db.fetchval("SELECT errors FROM documents")
    assert errors and all(set(e) == {"message", "path"} for e in errors)
    assert any(e["path"].startswith("/paths") or "description" in e["message"] for e in errors)


HOSTILE = {
    "not-found": ("/status/404", "unreachable", "HTTP 404"),
    "server-error": ("/status/500", "unreachable", "HTTP 500"),
    "hangs": ("/hang", "unreachable", "did not finish within"),
    "drips": ("/drip", "unreachable", "did not finish within"),
    "endless": ("/endless", "unreachable", "larger than CATALOG_MAX_SPEC_BYTES"),
    "gzip-bomb": ("/gzip-bomb", "unreachable", "larger than CATALOG_MAX_SPEC_BYTES"),
    "redirect-loop": ("/redirect-loop", "unreachable", "redirects"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_upstreams_are_recorded_as_unreachable(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer], name: str
) -> None:
    up, server = upstream
    path, status, error = HOSTILE[name]
    await register(collecting, admin, name, str(server.make_url(path)))
    project = await collected(collecting, name)
    assert project["status"] == status
    [attempt] = await attempts(collecting, name)
    assert attempt["outcome"] == "unreachable"
    assert error in attempt["error"]
    # The service is still fine.
    assert (await collecting.get("/api/health")).status == 200


BAD_DOCUMENTS: dict[str, tuple[bytes, str, str]] = {
    "yaml-bomb": (YAML_BOMB.encode(), "text/yaml", "alias"),
    "deep-json": (b"[" * 100_000 + b"]" * 100_000, "application/json", "nests deeper"),
    "deep-yaml": (b"a: " + b"[" * 5_000 + b"]" * 5_000, "text/yaml", "nests deeper"),
    "html": (b"<!doctype html><html><body>Login</body></html>", "text/html", "HTML"),
    "empty": (b"", "application/json", "empty"),
    "latin-1": (
        "openapi: 3.0.0\ninfo: {title: Caf\xe9, version: '1'}\npaths: {}\n".encode("latin-1"),
        "text/yaml",
        "not UTF-8",
    ),
    "a-list": (b"[1, 2, 3]", "application/json", "mapping"),
    "no-version": (b'{"info": {"title": "x"}}', "application/json", "neither"),
    "openapi-2": (b'{"openapi": "2.0.0"}', "application/json", "not a supported version"),
}


@pytest.mark.parametrize("name", list(BAD_DOCUMENTS))
async def test_bad_documents_are_recorded_as_invalid_with_a_reason(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
    name: str,
) -> None:
    up, server = upstream
    body, content_type, reason = BAD_DOCUMENTS[name]
    await register(collecting, admin, name, str(server.make_url(up.serve(name, body, content_type))))
    assert (await collected(collecting, name))["status"] == "invalid"
    [attempt] = await attempts(collecting, name)
    assert attempt["outcome"] == "invalid"
    errors = await db.fetchval("SELECT errors FROM documents")
    assert reason in errors[0]["message"], errors
    assert (await collecting.get("/api/health")).status == 200


async def test_a_declared_charset_is_honoured_when_the_bytes_are_not_utf8(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    body = "openapi: 3.0.0\ninfo: {title: Café, version: '1'}\npaths: {}\n".encode("latin-1")
    await register(
        collecting,
        admin,
        "cafe",
        str(server.make_url(up.serve("cafe", body, "text/yaml; charset=iso-8859-1"))),
    )
    assert (await collected(collecting, "cafe"))["status"] == "valid"


async def test_etag_makes_a_refresh_a_304_that_counts_as_unchanged(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    await register(collecting, admin, "meldingen", str(server.make_url(up.serve("meldingen", openapi_30()))))
    first = await collected(collecting, "meldingen")
    assert (await collecting.post("/api/projects/meldingen/refresh", headers=admin)).status == 202
    second = await collected(collecting, "meldingen", after=first["last_checked_at"])
    assert second["status"] == "valid"
    assert second["last_changed_at"] == first["last_changed_at"]
    latest, earliest = await attempts(collecting, "meldingen")
    assert (latest["outcome"], latest["http_status"], latest["trigger"]) == ("unchanged", 304, "refresh")
    assert up.if_none_match[0] is None and up.if_none_match[1] is not None


async def test_unchanged_content_is_not_validated_again_anywhere_in_the_catalog(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    url = str(server.make_url(up.serve("same-no-etag", openapi_30(paths=3))))
    await register(collecting, admin, "one", url)
    first = await collected(collecting, "one")
    await collecting.post("/api/projects/one/refresh", headers=admin)
    await collected(collecting, "one", after=first["last_checked_at"])
    # A second project with the very same bytes reuses the verdict.
    await register(collecting, admin, "two", url)
    assert (await collected(collecting, "two"))["status"] == "valid"

    outcomes = [a["outcome"] for a in await attempts(collecting, "one")]
    assert outcomes == ["unchanged", "changed"]
    metrics = await (await collecting.get("/metrics")).text()
    assert "catalog_validation_duration_seconds_count 1.0" in metrics

    # What the verdict was reached on is the second project's too: its document and
    # its operations (copied inside PostgreSQL).
    async def published(name: str) -> tuple[bytes, list[dict[str, Any]], Any]:
        document = await (await collecting.get(f"/api/catalog/{name}/openapi.json")).read()
        listed = await (await collecting.get("/api/operations", params={"project": name})).json()
        report = await (await collecting.get(f"/api/catalog/{name}/lint")).json()
        return document, [{**item, "project": None} for item in listed["items"]], report

    one = await published("one")
    assert one[1] and one[2]["findings"] and await published("two") == one
    # A project whose new version is bytes stored before: compared with what it
    # published, as any new version is.
    await register(collecting, admin, "three", str(server.make_url(up.serve("three", openapi_30(paths=1)))))
    before = await collected(collecting, "three")
    up.serve("three", openapi_30(paths=3))
    await collecting.post("/api/projects/three/refresh", headers=admin)
    assert (await collected(collecting, "three", after=before["last_checked_at"]))["status"] == "valid"
    assert await published("three") == one
    changes = await (await collecting.get("/api/catalog/three/changes")).json()
    assert changes["total"] == 1 and changes["items"][0]["changes"]
    assert "catalog_validation_duration_seconds_count 2.0" in await (await collecting.get("/metrics")).text()
    assert 'catalog_collections_total{outcome="unchanged"} 1.0' in metrics


async def test_the_last_valid_document_survives_a_broken_or_unreachable_update(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    url = str(server.make_url(up.serve("stable", openapi_30(version="1.0.0"))))
    await register(collecting, admin, "stable", url)
    good = await collected(collecting, "stable")
    published = await db.fetchval("SELECT published_document_id FROM projects")

    up.serve("stable", b"{ this is not json", "application/json")
    await collecting.post("/api/projects/stable/refresh", headers=admin)
    broken = await collected(collecting, "stable", after=good["last_checked_at"])
    assert broken["status"] == "invalid"
    assert await db.fetchval("SELECT published_document_id FROM projects") == published

    del up.docs["stable"]
    await collecting.post("/api/projects/stable/refresh", headers=admin)
    gone = await collected(collecting, "stable", after=broken["last_checked_at"])
    assert gone["status"] == "unreachable"
    assert await db.fetchval("SELECT published_document_id FROM projects") == published
    assert await db.fetchval("SELECT count(*) FROM documents") == 2


async def test_changing_the_url_collects_the_new_one_at_once(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    await register(collecting, admin, "moving", str(server.make_url("/status/404")))
    first = await collected(collecting, "moving")
    assert first["status"] == "unreachable"
    new_url = str(server.make_url(up.serve("moved", openapi_30())))
    assert (
        await collecting.patch("/api/projects/moving", json={"swagger_url": new_url}, headers=admin)
    ).status == 200
    second = await collected(collecting, "moving", after=first["last_checked_at"])
    assert second["status"] == "valid"
    assert (await attempts(collecting, "moving"))[0]["trigger"] == "url-change"


async def test_a_validation_that_overruns_its_time_is_no_verdict_and_the_next_one_works(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    client = await make_client(
        dataclasses.replace(collector_settings, validation_timeout=0.5, max_spec_bytes=50 * 1024 * 1024)
    )
    big = json.dumps(openapi_30(paths=150_000)).encode()  # seconds to read and judge
    await register(client, admin, "slow", str(server.make_url(up.serve("slow", big))))
    # A busy machine is not the document's fault: no verdict, no stored version, the
    # status it had, and another try after the usual back-off.
    assert (await collected(client, "slow"))["status"] == "pending"
    [attempt] = await attempts(client, "slow")
    assert attempt["outcome"] == "error" and "longer than 0.5 seconds" in attempt["error"]
    assert await db.fetchval("SELECT count(*) FROM documents") == 0
    retry = await db.fetchrow(
        "SELECT consecutive_failures, next_check_at - now() AS wait, lease_owner FROM projects WHERE name = 'slow'"
    )
    assert retry["consecutive_failures"] == 1 and retry["lease_owner"] is None
    assert retry["wait"].total_seconds() > 0.8 * collector_settings.refresh_interval
    await register(client, admin, "quick", str(server.make_url(up.serve("quick", openapi_30()))))
    assert (await collected(client, "quick"))["status"] == "valid"


async def test_health_answers_quickly_while_a_20mb_document_is_validated_and_stored_whole(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    up, server = upstream
    client = await make_client(
        dataclasses.replace(collector_settings, max_spec_bytes=50 * 1024 * 1024, fetch_timeout=30)
    )
    # 20 MB in 5,000 operations: parsing and validating it still takes seconds.
    document = openapi_30(paths=5_000)
    for item in document["paths"].values():
        item["get"]["description"] = "x" * 4_200
    big = json.dumps(document).encode()
    assert len(big) > 20 * 1024 * 1024
    await register(client, admin, "huge", str(server.make_url(up.serve("huge", big))))
    slowest = 0.0
    checks = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        began = time.perf_counter()
        response = await client.get("/api/health")
        slowest = max(slowest, time.perf_counter() - began)
        checks += 1
        assert response.status == 200
        project = await (await client.get("/api/projects/huge")).json()
        if project["last_checked_at"] is not None:
            break
        await asyncio.sleep(0.05)
    assert project["status"] == "valid"
    assert checks > 10
    # Parsing and validating take seconds; the loop was never blocked for anything close.
    assert slowest < 1.0, slowest
    # Stored in pieces (store.queue.PIECE_BYTES), published whole, every operation listed.
    stored = await db.fetchrow(
        """SELECT d.raw, (SELECT count(*) FROM operations o WHERE o.document_id = d.id) AS operations
           FROM documents d JOIN projects p ON p.published_document_id = d.id WHERE p.name = 'huge'"""
    )
    assert stored["raw"] == big and stored["operations"] == 5_000
    assert await (await client.get("/api/catalog/huge/openapi.json")).json() == document
    page = await (await client.get("/api/operations", params={"project": "huge", "limit": 1})).json()
    assert page["total"] == 5_000


async def test_failures_back_off_and_a_success_resets_the_interval(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    client = await make_client(dataclasses.replace(collector_settings, refresh_interval=1000))

    async def wait_seconds() -> float:
        row = await db.fetchrow("SELECT next_check_at - last_checked_at AS wait FROM projects")
        return float(row["wait"].total_seconds())

    await register(client, admin, "flaky", str(server.make_url("/status/500")))
    first = await collected(client, "flaky")
    assert 900 <= await wait_seconds() <= 1000  # one interval (with up to 10% jitter)
    await client.post("/api/projects/flaky/refresh", headers=admin)
    second = await collected(client, "flaky", after=first["last_checked_at"])
    assert 1800 <= await wait_seconds() <= 2000  # twice as long
    up.serve("flaky", openapi_30())
    await client.patch(
        "/api/projects/flaky", json={"swagger_url": str(server.make_url("/docs/flaky"))}, headers=admin
    )
    third = await collected(client, "flaky", after=second["last_checked_at"])
    assert third["status"] == "valid"
    assert 900 <= await wait_seconds() <= 1000  # back to one interval


async def test_the_service_sessions_never_jit_compile_their_queries(client: TestClient) -> None:
    """PostgreSQL's JIT compiled the claim for 60 ms on a much-updated projects table
    (its estimate passed jit_above_cost) for a query that ran in 12: every session of
    the service's pools has it off, whatever the server's default."""
    for key in (POOL, BACKGROUND_POOL):
        async with client.app[key].acquire() as conn:
            assert await conn.fetchval("SHOW jit") == "off"


async def test_collections_ending_together_are_recorded_together_each_as_it_ended(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    """A refresh of unchanged documents writes the attempts that end together in one
    statement (PostgreSQL's now() is a statement's: they share their finished_at),
    each with its own outcome, and every lease is handed back."""
    up, server = upstream
    names = [f"api-{i}" for i in range(8)]
    for i, name in enumerate(names):
        await register(collecting, admin, name, str(server.make_url(up.serve(name, openapi_30(paths=i + 1)))))
    for name in names:
        await collected(collecting, name)
    up.serve("api-7", openapi_30(paths=1))  # one of them changed
    checked = await db.fetchval("SELECT max(last_checked_at) FROM projects")
    # Every API falls due at once, as when the refresh interval has passed.
    await db.execute("UPDATE projects SET next_check_at = now()")
    deadline = time.monotonic() + 30
    while await db.fetchval("SELECT count(*) FROM projects WHERE last_checked_at > $1", checked) < 8:
        assert time.monotonic() < deadline, "not collected again"
        await asyncio.sleep(0.05)

    again = await db.fetch(
        """SELECT p.name, c.outcome, c.trigger, c.finished_at FROM collections c
           JOIN projects p ON p.id = c.project_id WHERE c.started_at > $1""",
        checked,
    )
    assert sorted((r["name"], r["outcome"], r["trigger"]) for r in again) == [
        *((name, "unchanged", "schedule") for name in names[:7]),
        ("api-7", "changed", "schedule"),
    ]
    unchanged = [r["finished_at"] for r in again if r["outcome"] == "unchanged"]
    assert len(set(unchanged)) < len(unchanged)
    assert await db.fetchval("SELECT count(*) FROM projects WHERE lease_owner IS NOT NULL") == 0
    assert await db.fetchval("SELECT count(*) FROM projects WHERE next_check_at <= now()") == 0


async def test_a_lease_lost_meanwhile_writes_nothing_for_it_and_the_others_are_recorded(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO projects (name, swagger_url, owner) VALUES ('kept', 'http://a.example/', 'x'), "
        "('taken', 'http://b.example/', 'x')"
    )
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        jobs = {}
        for name in ("kept", "taken"):
            job = await queue.claim_named(
                pool, name=name, replica="here", lease_seconds=60, silent_after=15, trigger="refresh"
            )
            assert job is not None
            jobs[name] = job
        # Another replica took "taken" over (this one looked dead to it).
        await db.execute("UPDATE projects SET lease_owner = 'there' WHERE name = 'taken'")
        records = Records(pool, replica="here", gather_seconds=5, most=2)
        result = Result(
            outcome="unchanged", status="valid", started_at=dt.datetime.now(dt.UTC), http_status=200
        )
        kept, taken = await asyncio.wait_for(
            asyncio.gather(
                records.record(queue.Finished(jobs["kept"], result, 60.0)),
                records.record(queue.Finished(jobs["taken"], result, 60.0)),
            ),
            timeout=4,  # two of two: written at once, without waiting the 5 s
        )
        await records.close()
    finally:
        await pool.close()
    assert (kept, taken) == (True, False)
    rows = await db.fetch(
        "SELECT p.name, c.outcome, c.trigger FROM collections c JOIN projects p ON p.id = c.project_id"
    )
    assert [tuple(r) for r in rows] == [("kept", "unchanged", "refresh")]
    states = {r["name"]: r["lease_owner"] for r in await db.fetch("SELECT name, lease_owner FROM projects")}
    assert states == {"kept": None, "taken": "there"}
