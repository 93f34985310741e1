"""Reads that miss the response cache: plain queries past connexion, pages from memory."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from catalog_service import response_cache
from catalog_service.api.catalog import entry_body
from catalog_service.api.plain_queries import plain_reads
from catalog_service.api.routing import handler
from catalog_service.indexes.catalog import BEHIND_SECONDS
from catalog_service.keys import CATALOG_INDEX, PLAIN_READS, POOL, RESPONSE_CACHE
from catalog_service.settings import Settings
from catalog_service.spec import spec_document
from catalog_service.store import catalog as store

from .conftest import LOOPBACK, routed

# Valid and invalid alike, at and past every bound of the spec's parameters.
QUERIES = [
    "",
    "limit=1",
    "limit=1000",
    "limit=1001",
    "limit=0",
    "limit=-1",
    "limit=+2",
    "limit=%202",
    "limit=02",
    "limit=2.0",
    "limit=two",
    "limit=",
    "limit=1&limit=2",
    "offset=0",
    "offset=3",
    "offset=2147483647",
    "offset=2147483648",
    "offset=99999999999999999999999",
    "status=valid",
    "status=invalid&limit=1",
    "status=VALID",
    "status=",
    "tag=mobiliteit",
    "tag=mobiliteit&status=valid",
    "tag=" + "t" * 64,
    "tag=" + "t" * 65,
    "tag=a%00b",
    "tag=",
    "min_score=0",
    "min_score=100",
    "min_score=101",
    "q=parkeren",
    "q=",
    "q=" + "q" * 501,
    "q=temperature&method=GET",
    "method=get",
    "method=POST",
    "project=parkeren",
    "project=Parkeren",
    "sort=name",
    "unknown=1",
    "access_token=secret",
]


async def answers(client: TestClient, path: str) -> list[tuple[int, str, bytes]]:
    found = []
    for query in QUERIES:
        response = await client.get(f"{path}?{query}" if query else path)
        # A problem's instance names nothing that differs; its body is compared whole.
        found.append((response.status, response.content_type, await response.read()))
    return found


async def index_current(app: web.Application, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while app[CATALOG_INDEX].page(tag=None, status=None, min_score=None, limit=1, offset=0) is None:
        assert time.monotonic() < deadline, "the catalog index did not catch up"
        await asyncio.sleep(0.05)


async def test_plain_queries_are_answered_exactly_as_connexion_answers_them(
    catalog: Any, make_client: Any, settings: Settings
) -> None:
    client, _, _ = catalog
    # The same service with every query taking the long way, through connexion (and
    # its response validation, on in the tests).
    slow_app_client = await make_client(dataclasses.replace(settings, allowed_networks=LOOPBACK))
    slow_app_client.server.app[PLAIN_READS].clear()
    assert client.server.app[PLAIN_READS].keys() == {"/api/catalog", "/api/operations"}
    await index_current(client.server.app)
    for path in ("/api/catalog", "/api/operations"):
        fast, slow = await answers(client, path), await answers(slow_app_client, path)
        for query, one, other in zip(QUERIES, fast, slow, strict=True):
            assert one == other, (path, query)
    statuses = {q: status for q, (status, _, _) in zip(QUERIES, fast, strict=True)}
    assert statuses["limit=1000"] == 200 and statuses["limit=1001"] == 400 and statuses["unknown=1"] == 400


async def catalog_pages(db: asyncpg.Connection, **filters: Any) -> dict[str, Any]:
    rows, total = await store.list_entries(db, limit=1000, offset=0, q=None, **filters)
    return {"items": [entry_body(row) for row in rows], "total": total}


async def test_pages_from_memory_are_postgresqls_pages_and_show_a_change_at_once(
    catalog: Any, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    client, _, _ = catalog
    app = client.server.app
    await index_current(app)
    filters: list[dict[str, Any]] = [
        {"tag": None, "status": None, "min_score": None},
        {"tag": "mobiliteit", "status": None, "min_score": None},
        {"tag": None, "status": "valid", "min_score": None},
        {"tag": "mobiliteit", "status": "invalid", "min_score": None},
        {"tag": None, "status": None, "min_score": 0},
    ]
    for chosen in filters:
        expected = await catalog_pages(db, **chosen)
        params = {key: str(value) for key, value in chosen.items() if value is not None}
        assert app[CATALOG_INDEX].page(limit=1000, offset=0, **chosen) is not None
        # Pages inside, at the end, running past it and beyond it.
        for limit, offset in [(1000, 0), (1, 0), (2, 1), (3, 3), (1, 4), (2, 4), (3, 5), (2, 40)]:
            body = await (
                await client.get("/api/catalog", params={**params, "limit": limit, "offset": offset})
            ).json()
            assert body == {"items": expected["items"][offset : offset + limit], "total": expected["total"]}

    # A change is visible a moment after its notification has arrived: once the index
    # has read it, within a round trip.
    response = await client.patch("/api/projects/afval", json={"tags": ["mobiliteit"]}, headers=admin)
    assert response.status == 200, await response.text()
    await asyncio.sleep(0.2)  # the NOTIFY travels to the listener
    for limit in (7, 8):  # another URL each time: not an answer the response cache kept
        body = await (await client.get("/api/catalog", params={"tag": "mobiliteit", "limit": limit})).json()
        assert [item["name"] for item in body["items"]] == ["afval", "broken", "parkeren"]
        assert body["items"][0]["tags"] == ["mobiliteit"]
        await index_current(app)
    assert (
        app[CATALOG_INDEX].page(tag="mobiliteit", status=None, min_score=None, limit=7, offset=0) is not None
    )

    await app[POOL].execute("DELETE FROM projects WHERE name = 'broken'")
    await asyncio.sleep(0.2)
    body = await (await client.get("/api/catalog", params={"limit": 5})).json()
    assert [item["name"] for item in body["items"]] == ["afval", "parkeren", "weather"]


async def test_a_catalog_that_keeps_changing_is_answered_from_memory_change_by_change(
    catalog: Any, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    """Each change names its project, which the index reads again alone: it holds
    every change within a round trip, even while the catalog never stops changing
    (it waited for half a second of quiet, and readers all went to PostgreSQL)."""
    client, _, _ = catalog
    app = client.server.app
    index, cache = app[CATALOG_INDEX], app[RESPONSE_CACHE]
    await index_current(app)
    began = time.monotonic()
    for i in range(24):  # a change every 50 ms, as while thousands of APIs are ingested
        description = f"version {i}"
        heard = cache.changes
        await db.execute(
            """UPDATE projects SET
                   description = CASE name WHEN 'parkeren' THEN $1 ELSE description END,
                   status = CASE name WHEN 'weather' THEN $2 ELSE status END
               WHERE name IN ('parkeren', 'weather')""",
            description,
            ("unreachable", "valid")[i % 2],
        )
        while cache.changes < heard + 2:  # each NOTIFY travels to the listener
            await asyncio.sleep(0.005)
        # A reader arriving now waits for the index to read that change (half a
        # second at most), and is answered from memory, with it.
        changes = await index.caught_up()
        assert changes is not None, f"change {i} not in the index within half a second"
        listed = index.page(tag="mobiliteit", status=None, min_score=None, limit=5, offset=0, changes=changes)
        assert listed is not None
        items = json.loads(b"[" + b",".join(bytes(part) for part in listed[0]) + b"]")
        [parkeren] = [item for item in items if item["name"] == "parkeren"]
        assert parkeren["name"] == "parkeren" and parkeren["description"] == description
        for status in ("valid", "unreachable"):
            by_status = index.page(
                tag=None, status=status, min_score=None, limit=5, offset=0, changes=changes
            )
            assert by_status is not None
            items = json.loads(b"[" + b",".join(bytes(part) for part in by_status[0]) + b"]")
            assert {"items": items, "total": by_status[1]} == await catalog_pages(db, tag=None, status=status)
        body = await (await client.get("/api/catalog", params={"limit": 10 + i})).json()
        assert [item["description"] for item in body["items"] if item["name"] == "parkeren"] == [description]
        await asyncio.sleep(max(0.0, began + 0.05 * (i + 1) - time.monotonic()))

    # New projects go where PostgreSQL's order of names puts them (its collation, not
    # Python's: "parke-zuid" sorts before "parkeren" in C and after it in en_US), a
    # deleted one goes: each read in as it comes, the index never rebuilt whole.
    rebuilt = index._built
    heard = cache.changes
    async with db.transaction():
        for name in ("parke-zuid", "aardbeien", "zuivel", "parkeren-2"):
            await db.execute(
                "INSERT INTO projects (name, swagger_url, owner) VALUES ($1, 'http://127.0.0.1:9/x', 'x')",
                name,
            )
        await db.execute("DELETE FROM projects WHERE name = 'weather'")
    while cache.changes < heard + 5:
        await asyncio.sleep(0.005)
    assert await index.caught_up() is not None
    expected = await catalog_pages(db, tag=None, status=None)
    assert [item["name"] for item in expected["items"]][0] == "aardbeien"
    for limit, offset in [(100, 0), (2, 0), (3, 2), (3, 5)]:
        listed = index.page(tag=None, status=None, min_score=None, limit=limit, offset=offset)
        assert listed is not None
        page = json.loads(b"[" + b",".join(bytes(part) for part in listed[0]) + b"]")
        assert (page, listed[1]) == (expected["items"][offset : offset + limit], expected["total"])
    assert index._built == rebuilt
    # Once the catalog is quiet for a moment, an unfiltered page is one slice again.
    deadline = time.monotonic() + 5
    while (
        len((listed := index.page(tag=None, status=None, min_score=None, limit=3, offset=2) or ([], 0))[0])
        != 1
    ):
        assert time.monotonic() < deadline, "not joined again"
        await asyncio.sleep(0.05)
    assert json.loads(b"[" + bytes(listed[0][0]) + b"]") == expected["items"][2:5]


async def test_a_reader_is_answered_at_once_while_a_change_of_a_moment_ago_is_read(
    catalog: Any, db: asyncpg.Connection
) -> None:
    """Under a large ingestion a change comes every few milliseconds, and readers that
    waited for the index to read each one queued behind a busy database. A change
    heard less than BEHIND_SECONDS ago does not hold a reader up: the page is what
    the index holds, and it goes from the cache, ETag and all, once the index has
    read the change."""
    client, _, _ = catalog
    app = client.server.app
    index, cache, pool = app[CATALOG_INDEX], app[RESPONSE_CACHE], app[POOL]
    await index_current(app)

    async def page() -> tuple[list[str], str]:
        # Bounded: a reader that waited for the index, then for PostgreSQL, would wait
        # here as long as the test holds every connection.
        response = await asyncio.wait_for(client.get("/api/catalog", params={"limit": 5}), 5)
        assert response.status == 200
        items = (await response.json())["items"]
        return [item["description"] for item in items if item["name"] == "parkeren"], response.headers["ETag"]

    async def changed(description: str) -> None:
        heard = cache.changes
        await db.execute("UPDATE projects SET description = $1 WHERE name = 'parkeren'", description)
        while cache.changes == heard:  # the NOTIFY travels to the listener
            await asyncio.sleep(0.005)

    before, _ = await page()
    # The index cannot read anything while every connection of its pool is held.
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        await changed("nieuw")
        behind, etag = await page()
        assert behind == before != ["nieuw"]
        assert await page() == (behind, etag)  # kept in the cache meanwhile
    finally:
        for conn in held:
            await pool.release(conn)
    await index_current(app)
    after, new_etag = await page()
    assert after == ["nieuw"] and new_etag != etag
    stale = await client.get("/api/catalog", params={"limit": 5}, headers={"If-None-Match": etag})
    assert stale.status == 200

    # A change heard longer ago than that: readers wait for it (then PostgreSQL).
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        await changed("nieuwer")
        assert index.nearly_current() is not None
        await asyncio.sleep(BEHIND_SECONDS)
        assert index.nearly_current() is None
    finally:
        for conn in held:
            await pool.release(conn)


def test_the_plain_checks_are_the_spec_s_and_a_keyword_they_do_not_know_takes_the_long_way() -> None:
    spec = spec_document()
    reads = plain_reads(spec, "/api", handler)
    catalog = reads["/api/catalog"]
    assert catalog.arguments({}) == {"limit": 100, "offset": 0}
    assert catalog.arguments({"status": "valid", "limit": "5"}) == {
        "status": "valid",
        "limit": 5,
        "offset": 0,
    }
    assert catalog.arguments({"status": "gone"}) is None
    assert reads["/api/operations"].arguments({"method": "PATCH"}) == {
        "method": "PATCH",
        "limit": 100,
        "offset": 0,
    }

    changed = {**spec, "paths": {**spec["paths"]}}
    item = changed["paths"]["/catalog"] = {**spec["paths"]["/catalog"]}
    item["get"] = {**item["get"], "parameters": [*item["get"]["parameters"]]}
    item["get"]["parameters"].append(
        {"name": "when", "in": "query", "schema": {"type": "string", "format": "date"}}
    )
    assert "/api/catalog" not in plain_reads(changed, "/api", handler)


@pytest.mark.parametrize("value", ["1", "100", "0"])
def test_an_integer_is_plain_only_as_digits(value: str) -> None:
    check = plain_reads(spec_document(), "/api", handler)["/api/catalog"].checks["min_score"]
    assert check.value(value) == int(value)
    assert check.value(" " + value) is None and check.value("+" + value) is None


# What an answer says besides its body; Date and Content-Length aside.
COMPARED = (
    "Content-Type",
    "ETag",
    "Vary",
    "Cache-Control",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "API-Version",
    "Content-Security-Policy",
)


async def test_an_answer_from_the_response_cache_is_the_answer_it_kept_and_is_counted(catalog: Any) -> None:
    client, _, _ = catalog
    for path in (
        "/api/catalog?limit=2",
        "/api/operations?q=parkeren",
        "/api/catalog/parkeren/openapi.json",
        "/api/catalog/parkeren/openapi.yaml",
    ):
        first = await client.get(path, headers={"Accept": "text/yaml"} if path.endswith("yaml") else {})
        assert first.status == 200, path
        again = await client.get(path, headers={"Accept": "text/yaml"} if path.endswith("yaml") else {})
        assert again.status == 200
        assert await again.read() == await first.read()
        assert [again.headers.getall(h, None) for h in COMPARED] == [
            first.headers.getall(h, None) for h in COMPARED
        ]
        assert again.headers["Content-Security-Policy"].startswith("default-src 'none'")
        held = await client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert held.status == 304
        assert held.headers["API-Version"] == first.headers["API-Version"]
    metrics = await (await client.get("/metrics")).text()
    # Built once, answered from memory twice (a 200 and a 304): every one counted.
    assert 'catalog_http_requests_total{operation="GET /api/catalog",status="200"} 2.0' in metrics
    assert 'catalog_http_requests_total{operation="GET /api/catalog",status="304"} 1.0' in metrics
    assert (
        'catalog_http_requests_total{operation="GET /api/catalog/{name}/openapi.yaml",status="200"} 2.0'
        in metrics
    )


async def waiting_for(db: asyncpg.Connection, table: str) -> int:
    """Statements waiting for a lock on ``table`` (a statement waiting while it is
    parsed still shows its session's previous query: locks tell, texts do not)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted", table
    )
    return count


async def test_readers_of_one_page_arriving_together_share_one_build_of_it(
    catalog: Any, db: asyncpg.Connection
) -> None:
    client, _, _ = catalog
    path = "/api/catalog?q=parkeren&limit=3"  # a search: always PostgreSQL's
    expected = await client.get(path)
    assert expected.status == 200
    # Every connection of the pool open: each reader could send its query at once.
    pool = client.server.app[POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in held:
        await pool.release(conn)
    await db.execute("NOTIFY catalog_changed")
    await asyncio.sleep(1.5)  # the cache empties; the indexes catch up
    # The database is busy (here: a lock on projects) while ten readers ask for a page
    # the cache no longer holds.
    async with db.transaction():
        await db.execute("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        readers = [asyncio.create_task(client.get(path)) for _ in range(10)]
        deadline = time.monotonic() + 10
        while not await waiting_for(db, "projects"):
            assert time.monotonic() < deadline, "no reader reached the database"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert await waiting_for(db, "projects") == 1  # one query for ten readers
    answers = await asyncio.gather(*readers)
    assert [answer.status for answer in answers] == [200] * 10
    assert {await answer.read() for answer in answers} == {await expected.read()}


async def test_a_page_the_cache_let_go_is_kept_again_by_the_next_conditional_request(
    catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client revalidating a page the cache let go (older than MAX_AGE_SECONDS, or
    evicted) gets its 304, and the page is kept again: the same 304 after it is
    answered before routing, not through the router and connexion every time."""
    client, _, _ = catalog
    seen = routed(client.server.app)
    monkeypatch.setattr(response_cache, "MAX_AGE_SECONDS", 0.3)
    first = await client.get("/api/catalog?limit=2")
    assert first.status == 200 and seen == ["/api/catalog?limit=2"]
    await asyncio.sleep(0.5)  # the cache lets the page go
    for _ in range(3):
        held = await client.get("/api/catalog?limit=2", headers={"If-None-Match": first.headers["ETag"]})
        assert held.status == 304 and held.headers["ETag"] == first.headers["ETag"]
    assert seen == ["/api/catalog?limit=2"] * 2
