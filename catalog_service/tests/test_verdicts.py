"""Every document gets its true verdict, and no document freezes a project.

The reference is openapi-spec-validator as its command line reads a file; only the
document's own faults become its verdict; whatever a document holds, its collection
ends in a recorded outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as reference_validate
from openapi_spec_validator.readers import read_from_filename
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from catalog_service.collector.analyze import fast_errors, reference_errors, spec_format_of, validation_errors
from catalog_service.collector.workers import BATCH_NICENESS, ValidatorPool
from catalog_service.settings import Settings

from .conftest import REAL_SPECS, attempts, collected, register
from .upstream import SWAGGER_2, SWAGGER_2_INVALID, Upstream, openapi_30


def with_integer_status_codes(document: Any) -> Any:
    """The document as people write YAML by hand: `200:`, not `"200":`."""
    if isinstance(document, dict):
        return {
            (int(key) if isinstance(key, str) and key.isdigit() and len(key) == 3 else key): (
                with_integer_status_codes(value)
            )
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [with_integer_status_codes(item) for item in document]
    return document


def reference_verdict(path: Path) -> bool:
    """openapi-spec-validator's verdict on a file, read as its command line reads it."""
    document, _ = read_from_filename(str(path))
    try:
        reference_validate(document)
    except OpenAPIValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "source",
    [
        "swagger-2.0 fixture",
        "selectpdf.com.json",
        "interzoid.com__getcitystandard.json",
        "collegefootballdata.com.json",
    ],
)
async def test_yaml_with_unquoted_status_codes_gets_the_reference_verdict(
    client: TestClient, tmp_path: Path, source: str
) -> None:
    original = SWAGGER_2 if source.startswith("swagger") else json.loads((REAL_SPECS / source).read_text())
    text = yaml.safe_dump(with_integer_status_codes(original), sort_keys=False, allow_unicode=True)
    assert "200:" in text and "'200':" not in text
    path = tmp_path / "openapi.yaml"
    path.write_text(text)
    expected = reference_verdict(path)
    assert expected is True  # each of these is valid as its command line reads it

    verdict = await (
        await client.post("/api/validate", data=text.encode(), headers={"Content-Type": "application/yaml"})
    ).json()
    assert verdict["valid"] is expected, verdict["errors"][:3]


async def test_a_collected_yaml_document_with_integer_status_codes_is_valid_and_published_as_json(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    text = yaml.safe_dump(with_integer_status_codes(SWAGGER_2), sort_keys=False)
    await register(collecting, admin, "afval", str(server.make_url(up.serve("afval", text, "text/yaml"))))
    assert (await collected(collecting, "afval"))["status"] == "valid"
    published = await (await collecting.get("/api/catalog/afval/openapi.json")).json()
    assert set(published["paths"]["/containers"]["get"]["responses"]) == {"200"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, "x-n": NaN}',
            "application/json",
        ),
        (
            b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, "x-n": -Infinity}',
            "text/plain",
        ),
        (b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\nx-n: .nan\n", "application/yaml"),
        (b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\nx-n: .inf\n", "application/yaml"),
    ],
)
async def test_nan_and_infinity_are_refused_with_an_error_that_says_so(
    client: TestClient, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type if content_type != "application/json" else "text/plain"}
    verdict = await (await client.post("/api/validate", data=body, headers=headers)).json()
    assert verdict["valid"] is False
    assert "NaN or Infinity" in verdict["errors"][0]["message"]


async def test_published_json_is_strict_json_whatever_the_source_held(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    good = openapi_30()
    await register(collecting, admin, "meten", str(server.make_url(up.serve("meten", good))))
    first = await collected(collecting, "meten")
    up.serve("meten", b"openapi: 3.0.3\ninfo: {title: t, version: '2'}\npaths: {}\nx-n: .inf\n", "text/yaml")
    await collecting.post("/api/projects/meten/refresh", headers=admin)
    assert (await collected(collecting, "meten", after=first["last_checked_at"]))["status"] == "invalid"
    text = await (await collecting.get("/api/catalog/meten/openapi.json")).text()

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in published JSON")

    assert json.loads(text, parse_constant=refuse) == good


async def test_text_postgres_cannot_hold_never_freezes_a_project(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    words = " ".join(f"w{i:06d}" for i in range(200_000))  # 1.6 MB of distinct words
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Lastige tekens", "version": "1", "description": words},
        "paths": {
            "/a\u0000b": {
                "get": {
                    "tags": ["\ud800lone"],
                    "summary": "nul\u0000",
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    await register(
        collecting, admin, "lastig", str(server.make_url(up.serve("lastig", json.dumps(document))))
    )
    project = await collected(collecting, "lastig")
    assert project["status"] == "valid"
    [attempt] = await attempts(collecting, "lastig")
    assert attempt["outcome"] == "changed"
    operation = await db.fetchrow("SELECT path, tags, summary FROM operations")
    assert operation["path"] == "/a\ufffdb" and operation["tags"] == ["\ufffdlone"]
    found = await (await collecting.get("/api/catalog", params={"q": "lastige"})).json()
    assert [item["name"] for item in found["items"]] == ["lastig"]
    assert await db.fetchval("SELECT count(*) FROM projects WHERE lease_owner IS NOT NULL") == 0


def validation_workers() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "multiprocessing.spawn" in " ".join(child.cmdline())
    ]


async def test_a_worker_killed_mid_validation_is_no_verdict_and_the_next_try_judges(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    client = await make_client(dataclasses.replace(collector_settings, max_spec_bytes=50 * 1024 * 1024))
    big = json.dumps(openapi_30(paths=150_000)).encode()  # seconds to read and judge
    url = str(server.make_url(up.serve("groot", big)))
    await register(client, admin, "groot", url)
    deadline = time.monotonic() + 30
    while not up.hits["/docs/groot"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # the document is in a worker now
    workers = validation_workers()
    assert workers, "no validation worker to kill"
    for worker in workers:
        worker.kill()  # as the OOM killer would

    first = await collected(client, "groot")
    assert first["status"] == "pending"
    [attempt] = await attempts(client, "groot")
    assert attempt["outcome"] == "error" and "died" in attempt["error"]
    assert await db.fetchval("SELECT count(*) FROM documents") == 0  # no verdict cached for the bytes

    await client.post("/api/projects/groot/refresh", headers=admin)
    assert (await collected(client, "groot", after=first["last_checked_at"], timeout=60))["status"] == "valid"
    # Its 150,000 operations (some 15 MB as JSON) reached the database in pieces, every one.
    stored = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT path) AS paths, bool_and(method = 'GET') AS gets FROM operations"
    )
    assert (stored["n"], stored["paths"], stored["gets"]) == (150_000, 150_000, True)


async def test_a_url_changed_during_a_collection_does_not_inherit_the_old_urls_etag(
    collecting: TestClient,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
    db: asyncpg.Connection,
) -> None:
    up, server = upstream
    old = str(server.make_url(up.serve("oud", openapi_30(version="1"))))
    new = str(server.make_url(up.serve("nieuw", openapi_30(version="2"))))
    await register(collecting, admin, "verhuisd", old)
    first = await collected(collecting, "verhuisd")
    assert await db.fetchval("SELECT http_etag FROM projects") is not None
    up.delay = 1.0
    await collecting.post("/api/projects/verhuisd/refresh", headers=admin)
    await asyncio.sleep(0.3)  # the refresh is downloading the old URL now
    changed = await collecting.patch("/api/projects/verhuisd", json={"swagger_url": new}, headers=admin)
    assert changed.status == 200
    second = await collected(collecting, "verhuisd", after=first["last_checked_at"])
    # The refresh of the old URL finished after the move: its validators are not the new URL's.
    assert await db.fetchval("SELECT http_etag FROM projects") is None
    up.delay = 0
    await collected(collecting, "verhuisd", after=second["last_checked_at"])
    assert up.if_none_match[-1] is None  # the new URL was asked for without the old ETag
    document = await (await collecting.get("/api/catalog/verhuisd/openapi.json")).json()
    assert document["info"]["version"] == "2"


BROKEN: dict[str, dict[str, Any]] = {
    "swagger-2.0 without a response description": SWAGGER_2_INVALID,
    "an operation without responses": {
        "openapi": "3.0.3",
        "info": {"title": "x", "version": "1"},
        "paths": {"/x": {"get": {}}},
    },
    "a path parameter not declared": {
        "openapi": "3.0.3",
        "info": {"title": "x", "version": "1"},
        "paths": {"/x/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}},
    },
    "a default its own pattern refuses": {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {},
        "components": {"schemas": {"S": {"type": "string", "pattern": "^[a-z]+$", "default": "ABC"}}},
    },
    "duplicate operationIds": {
        "openapi": "3.0.3",
        "info": {"title": "x", "version": "1"},
        "paths": {
            "/a": {"get": {"operationId": "same", "responses": {"200": {"description": "ok"}}}},
            "/b": {"get": {"operationId": "same", "responses": {"200": {"description": "ok"}}}},
        },
    },
    "a reference to nothing": {
        "openapi": "3.0.3",
        "info": {"title": "x", "version": "1"},
        "paths": {},
        "components": {"schemas": {"A": {"$ref": "#/components/schemas/Missing"}}},
    },
}


def test_the_fast_path_finds_what_the_reference_finds_on_every_document_of_the_suite() -> None:
    documents = {
        path.name: read_from_filename(str(path))[0]
        for path in sorted(REAL_SPECS.iterdir())
        if path.suffix in (".json", ".yaml")
    }
    documents |= {"swagger 2.0": SWAGGER_2, "openapi 3.0": openapi_30(paths=5)} | BROKEN
    documents = {name: json.loads(json.dumps(doc)) for name, doc in documents.items()}
    assert len(documents) >= 30
    undecided = []
    for name, document in documents.items():
        spec_format = spec_format_of(document)
        reference = reference_errors(document, spec_format)
        fast = fast_errors(document, spec_format)
        if fast is None:
            # It cannot say: the reference decides.
            undecided.append(name)
            assert validation_errors(document, spec_format) == reference, name
            continue
        # The same verdict, and the same errors at the same places.
        assert sorted(map(str, fast)) == sorted(map(str, reference)), name
        assert validation_errors(document, spec_format) == fast
    # It decides nearly every document: only a reference to nothing stops it, and the
    # reference says why.
    assert undecided == ["a reference to nothing"]
    assert (
        "could not process" in reference_errors(BROKEN["a reference to nothing"], "openapi-3.0")[0]["message"]
    )


async def test_idle_workers_leave_and_the_next_document_brings_one_back() -> None:
    pool = ValidatorPool(size=2, timeout=60, max_expanded_bytes=10 * 1024 * 1024, idle_seconds=1.0)
    document = json.dumps(openapi_30()).encode()
    try:
        both = await asyncio.gather(pool.analyze(document), pool.analyze(document))
        assert [analysis.valid for analysis in both] == [True, True]
        assert len(validation_workers()) == 2
        deadline = time.monotonic() + 15
        while validation_workers() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert validation_workers() == []  # their memory is the system's again
        assert (await pool.analyze(document)).valid
        assert len(validation_workers()) == 1  # one job, one worker
    finally:
        await pool.close()


async def test_a_new_worker_is_batch_work_from_its_first_instruction() -> None:
    """A worker imports the validator and the linter (some 0.6 s of CPU) before it
    serves: at the lowest priority already, or every worker replaced after a large
    document took that time from the readers' event loop and PostgreSQL."""
    pool = ValidatorPool(size=1, timeout=60, max_expanded_bytes=10 * 1024 * 1024)
    try:
        pool.start()
        (worker,) = pool._all
        assert not worker.conn.poll()  # still starting: nothing said yet
        assert psutil.Process(worker.process.pid).nice() == BATCH_NICENESS == 19
        assert (await pool.analyze(json.dumps(openapi_30()).encode())).valid
        assert psutil.Process(worker.process.pid).nice() == 19
    finally:
        await pool.close()


async def test_a_busy_pool_keeps_one_retirement_timer_whatever_it_served() -> None:
    """Each job that ended used to set a timer of its own: after an ingestion of the
    corpus, 4,279 of them fired in the next half minute, each looking at every idle
    worker. The timer set when the first job ended stays the only one."""
    pool = ValidatorPool(size=1, timeout=60, max_expanded_bytes=10 * 1024 * 1024, idle_seconds=30.0)
    document = json.dumps(openapi_30()).encode()
    try:
        assert (await pool.analyze(document)).valid
        first = pool._retiring
        assert first is not None
        for _ in range(20):
            assert (await pool.analyze(document)).valid
        assert pool._retiring is first
        assert not first.cancelled()
    finally:
        await pool.close()
    assert first.cancelled()  # closing leaves no timer behind


async def test_an_idle_worker_leaves_even_when_its_timer_fires_early() -> None:
    """The retirement timer of a worker can fire before the worker has been idle long
    enough (an event loop's clock lags); it is looked at again, never kept for good:
    at rest, a worker left alive held 69 MB."""
    pool = ValidatorPool(size=1, timeout=60, max_expanded_bytes=10 * 1024 * 1024, idle_seconds=1.0)
    try:
        assert (await pool.analyze(json.dumps(openapi_30()).encode())).valid
        (worker,) = pool._all
        # As if the timer set when it went idle fired a quarter second early.
        worker.idle_since += 0.25
        deadline = time.monotonic() + 15
        while validation_workers() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert validation_workers() == []
    finally:
        await pool.close()
