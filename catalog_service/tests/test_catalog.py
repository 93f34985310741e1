"""The published catalog: search, entries, published documents, versions, operations."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import time
from typing import Any

import asyncpg
import pytest
import yaml
from aiohttp.test_utils import TestClient

from catalog_service.settings import Settings

from .conftest import REAL_SPECS, collected, register
from .upstream import PARKEREN, SWAGGER_2, Upstream, openapi_30


async def names(client: TestClient, **params: Any) -> list[str]:
    response = await client.get("/api/catalog", params=params)
    assert response.status == 200, await response.text()
    return [item["name"] for item in (await response.json())["items"]]


async def test_catalog_entries_say_what_a_reader_needs(catalog: Any) -> None:
    client, _, _ = catalog
    body = await (await client.get("/api/catalog")).json()
    assert body["total"] == 4
    entries = {item["name"]: item for item in body["items"]}
    assert [item["name"] for item in body["items"]] == ["afval", "broken", "parkeren", "weather"]
    parkeren = entries["parkeren"]
    assert parkeren["title"] == "Parkeervergunningen"
    assert parkeren["version"] == "2.1.0" and parkeren["spec_format"] == "openapi-3.0"
    assert (
        parkeren["status"] == "valid" and parkeren["operations_count"] == 3 and parkeren["errors_count"] == 0
    )
    assert parkeren["links"]["openapi_json"] == "/api/catalog/parkeren/openapi.json"
    assert parkeren["links"]["browse"] == "/api/browse/?primaryName=parkeren"
    assert entries["afval"]["spec_format"] == "swagger-2.0"
    assert entries["weather"]["spec_format"] == "openapi-3.1"
    assert entries["broken"]["status"] == "invalid" and entries["broken"]["errors_count"] > 0
    assert entries["broken"]["version"] is None

    detail = await (await client.get("/api/catalog/broken")).json()
    assert detail["validation_errors"] and all(
        set(e) == {"message", "path"} for e in detail["validation_errors"]
    )
    assert (await (await client.get("/api/catalog/parkeren")).json())["validation_errors"] == []
    assert (await client.get("/api/catalog/nobody")).status == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Parkeervergunningen", ["parkeren"]),  # a title word
        ("vergunning", ["parkeren"]),  # Dutch stemming: vergunningen -> vergunning
        ("stations", ["weather"]),  # a word of a path
        ("reading", ["weather"]),  # English stemming: readings -> read
        ("zoekVergunningen", ["parkeren"]),  # an operationId
        ("containers", ["afval"]),  # Swagger 2.0 path and description
        ("mobiliteit", ["broken", "parkeren"]),  # a tag, broken ones included
        ("temperature", ["weather"]),  # an operation summary
        ("nothing-like-this", []),
    ],
)
async def test_search_finds_apis_by_what_they_offer(catalog: Any, query: str, expected: list[str]) -> None:
    client, _, _ = catalog
    assert sorted(await names(client, q=query)) == expected


async def test_search_ranks_the_best_match_first(catalog: Any) -> None:
    client, _, _ = catalog
    # "parkeren" is the name and a tag of one API, and only a tag of none other.
    assert (await names(client, q="vergunningen parkeren"))[0] == "parkeren"


async def test_filters_by_tag_and_status_and_pages_stably(catalog: Any) -> None:
    client, _, _ = catalog
    assert await names(client, tag="mobiliteit") == ["broken", "parkeren"]
    assert await names(client, status="valid") == ["afval", "parkeren", "weather"]
    assert await names(client, status="invalid") == ["broken"]
    assert await names(client, tag="mobiliteit", status="valid") == ["parkeren"]
    pages = [await names(client, limit=1, offset=i) for i in range(5)]
    assert pages == [["afval"], ["broken"], ["parkeren"], ["weather"], []]
    body = await (await client.get("/api/catalog", params={"limit": 1, "offset": 2})).json()
    assert body["total"] == 4
    assert (await client.get("/api/catalog", params={"status": "weird"})).status == 400


async def test_the_catalog_etag_gives_304_until_the_catalog_changes(
    catalog: Any, admin: dict[str, str]
) -> None:
    client, up, server = catalog
    first = await client.get("/api/catalog", params={"tag": "mobiliteit"})
    etag = first.headers["ETag"]
    again = await client.get("/api/catalog", params={"tag": "mobiliteit"}, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    other = await client.get("/api/catalog", headers={"If-None-Match": etag})
    assert other.status == 200  # another query has another ETag

    url = str(server.make_url(up.serve("fietsen", openapi_30(title="Fietsenstallingen"))))
    await register(client, admin, "fietsen", url)
    await collected(client, "fietsen")
    await asyncio.sleep(0.2)  # the NOTIFY travels to the listener
    changed = await client.get("/api/catalog", params={"tag": "mobiliteit"}, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag


async def test_the_published_document_is_the_collected_one_in_json_and_yaml(catalog: Any) -> None:
    client, _, _ = catalog
    as_json = await client.get("/api/catalog/parkeren/openapi.json")
    assert as_json.status == 200 and as_json.content_type == "application/json"
    assert await as_json.json() == PARKEREN
    assert as_json.headers["Cache-Control"].startswith("public")
    cached = await client.get(
        "/api/catalog/parkeren/openapi.json", headers={"If-None-Match": as_json.headers["ETag"]}
    )
    assert cached.status == 304

    as_yaml = await client.get("/api/catalog/afval/openapi.yaml")
    assert as_yaml.status == 200 and as_yaml.content_type == "application/yaml"
    assert yaml.safe_load(await as_yaml.text()) == SWAGGER_2
    assert (
        await client.get(
            "/api/catalog/afval/openapi.yaml", headers={"If-None-Match": as_yaml.headers["ETag"]}
        )
    ).status == 304


async def test_an_api_that_never_had_a_valid_document_has_none_published(catalog: Any) -> None:
    client, _, _ = catalog
    response = await client.get("/api/catalog/broken/openapi.json")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert "invalid" in (await response.json(content_type=None))["detail"]
    assert (await client.get("/api/catalog/broken/openapi.yaml")).status == 404


async def test_versions_list_every_distinct_document_newest_first(
    catalog: Any, admin: dict[str, str]
) -> None:
    client, up, _ = catalog
    before = await (await client.get("/api/projects/parkeren")).json()
    up.serve("parkeren", {**PARKEREN, "info": {**PARKEREN["info"], "version": "2.2.0"}})
    await client.post("/api/projects/parkeren/refresh", headers=admin)
    await collected(client, "parkeren", after=before["last_checked_at"])
    versions = await (await client.get("/api/catalog/parkeren/versions")).json()
    assert versions["total"] == 2
    assert [v["version"] for v in versions["items"]] == ["2.2.0", "2.1.0"]
    assert all(v["valid"] and len(v["sha256"]) == 64 for v in versions["items"])
    published = await (await client.get("/api/catalog/parkeren/openapi.json")).json()
    assert published["info"]["version"] == "2.2.0"


async def test_operations_are_searchable_across_the_catalog(catalog: Any) -> None:
    client, _, _ = catalog
    everything = await (await client.get("/api/operations", params={"limit": 1000})).json()
    assert everything["total"] == 2 + 3 + 1  # the broken API publishes nothing
    found = await (await client.get("/api/operations", params={"q": "vergunning"})).json()
    assert {(o["project"], o["method"], o["path"]) for o in found["items"]} == {
        ("parkeren", "GET", "/vergunningen"),
        ("parkeren", "POST", "/vergunningen"),
        ("parkeren", "DELETE", "/vergunningen/{id}"),
    }
    deleted = await (
        await client.get("/api/operations", params={"q": "vergunning", "method": "DELETE"})
    ).json()
    assert [(o["operation_id"], o["deprecated"]) for o in deleted["items"]] == [("trekIn", True)]
    by_id = await (await client.get("/api/operations", params={"q": "listContainers"})).json()
    assert [o["summary"] for o in by_id["items"]] == ["Alle containers"]
    only = await (await client.get("/api/operations", params={"project": "weather"})).json()
    assert [o["operation_id"] for o in only["items"]] == ["getReadings"]


async def test_every_real_document_is_published_faithfully(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(
        dataclasses.replace(settings, workers=2, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    sources = {}
    for i, path in enumerate(sorted(p for p in REAL_SPECS.iterdir() if p.suffix in (".json", ".yaml"))):
        raw = path.read_bytes()
        sources[f"real-{i}"] = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
        await register(
            client,
            admin,
            f"real-{i}",
            str(server.make_url(up.serve(path.name, raw, "application/octet-stream"))),
        )
    published = 0
    for name, source in sources.items():
        if (await collected(client, name, timeout=120))["status"] != "valid":
            continue
        as_json = await (await client.get(f"/api/catalog/{name}/openapi.json")).json()
        as_yaml = yaml.safe_load(await (await client.get(f"/api/catalog/{name}/openapi.yaml")).text())
        # YAML dates and the like become strings in JSON; compare what JSON can carry.
        expected = json.loads(json.dumps(source, default=str))
        assert as_json == expected, name
        assert as_yaml == expected, name
        published += 1
    assert published == 23


async def test_catalog_and_operation_searches_use_indexes_at_a_thousand_apis(db: asyncpg.Connection) -> None:
    await db.execute(
        """
        INSERT INTO projects (name, swagger_url, owner, tags, title, description, status)
        SELECT 'api-' || i, 'https://example.org/' || i, 'admin', ARRAY['tag-' || (i % 20)],
               'API number ' || i, 'Beschrijving van dienst ' || i, CASE WHEN i % 7 = 0 THEN 'invalid' ELSE 'valid' END
        FROM generate_series(1, 1000) AS i
        """
    )
    await db.execute(
        """
        INSERT INTO documents (project_id, sha256, raw, valid, errors, title)
        SELECT id, sha256(id::text::bytea), '{}', true, '[]', title FROM projects
        """
    )
    await db.execute(
        """
        INSERT INTO operations (document_id, method, path, operation_id, summary)
        SELECT d.id, m.method, '/things/' || d.id || '/' || m.method, 'op' || d.id || m.method, 'Does thing ' || d.id
        FROM documents d CROSS JOIN (VALUES ('GET'), ('POST'), ('DELETE'), ('PUT'), ('PATCH')) AS m(method)
        """
    )
    await db.execute(
        "UPDATE projects p SET published_document_id = d.id, current_document_id = d.id FROM documents d WHERE d.project_id = p.id"
    )
    # As autovacuum leaves a live database: statistics and the visibility map. A
    # transaction open elsewhere in the database (another test's app closing) keeps
    # VACUUM from marking pages all-visible, and a count over every project then
    # rightly scans the table: vacuumed again until the map covers each table.
    deadline = time.monotonic() + 30
    for table in ("projects", "documents", "operations"):
        while True:
            await db.execute(f"VACUUM ANALYZE {table}")
            pages, visible = await db.fetchrow(
                "SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass", table
            )
            if visible >= pages:
                break
            assert time.monotonic() < deadline, f"{table}: {visible} of {pages} pages all-visible"
            await asyncio.sleep(0.2)

    from catalog_service.store import catalog as store

    plans = []

    class Explaining:
        """Runs each query of the store under EXPLAIN, as the service would send it."""

        async def fetch(self, query: str, *args: Any) -> list[Any]:
            plans.append("\n".join(r[0] for r in await db.fetch("EXPLAIN " + query, *args)))
            return await db.fetch(query, *args)

        async def fetchval(self, query: str, *args: Any) -> Any:
            plans.append("\n".join(r[0] for r in await db.fetch("EXPLAIN " + query, *args)))
            return await db.fetchval(query, *args)

    explaining: Any = Explaining()
    rows, _ = await store.list_entries(explaining, q=None, tag=None, status=None, limit=50, offset=0)
    assert len(rows) == 50
    # A search that matches a few APIs (one matching all of them is rightly a scan).
    rows, _ = await store.list_entries(explaining, q="dienst 17", tag=None, status=None, limit=50, offset=0)
    assert [r["name"] for r in rows] == ["api-17"]
    rows, _ = await store.list_entries(explaining, q=None, tag="tag-3", status=None, limit=50, offset=0)
    assert len(rows) == 50
    rows, _ = await store.search_operations(
        explaining, q="op17GET", method=None, project=None, limit=50, offset=0
    )
    assert [r["project"] for r in rows] == ["api-17"]
    for plan in plans:
        assert "Seq Scan on projects" not in plan and "Seq Scan on operations" not in plan, plan


async def test_a_matching_etag_is_answered_without_touching_the_database(catalog: Any) -> None:
    client, _, _ = catalog
    from catalog_service.keys import POOL

    etag = (await client.get("/api/catalog", params={"limit": 10})).headers["ETag"]
    # With the service's pool closed, anything that queries fails with 503 (a search
    # does: pages without q may come from the catalog index, in memory)...
    await client.app[POOL].close()
    assert (await client.get("/api/catalog", params={"q": "parkeren"})).status == 503
    # ...but a request whose ETag still matches is answered from memory.
    again = await client.get("/api/catalog", params={"limit": 10}, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag


async def test_a_collection_that_finds_nothing_new_keeps_the_cache_and_a_change_drops_it(
    catalog: Any, admin: dict[str, str]
) -> None:
    client, up, server = catalog
    first = await client.get("/api/catalog")
    etag = first.headers["ETag"]
    project = await (await client.get("/api/projects/parkeren")).json()
    await client.post("/api/projects/parkeren/refresh", headers=admin)
    checked = await collected(client, "parkeren", after=project["last_checked_at"])
    assert checked["last_changed_at"] == project["last_changed_at"]
    await asyncio.sleep(0.3)  # a NOTIFY, if one were sent, would have arrived by now
    kept = await client.get("/api/catalog", headers={"If-None-Match": etag})
    assert kept.status == 304 and kept.headers["ETag"] == etag

    # Something a reader sees: the ETag changes at once.
    up.serve("parkeren", {**PARKEREN, "info": {**PARKEREN["info"], "version": "2.2.0"}})
    await client.post("/api/projects/parkeren/refresh", headers=admin)
    await collected(client, "parkeren", after=checked["last_checked_at"])
    await asyncio.sleep(0.3)
    changed = await client.get("/api/catalog", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert "2.2.0" in await changed.text()


async def test_a_page_built_across_a_change_is_sent_but_not_kept(catalog: Any) -> None:
    from catalog_service.keys import RESPONSE_CACHE
    from catalog_service.response_cache import Cached

    client, _, _ = catalog
    cache = client.app[RESPONSE_CACHE]
    began_in = cache.generation
    cache.invalidate()  # what a NOTIFY arriving during the query does
    cache.put("/api/catalog?stale", Cached('W/"x"', b"{}", "application/json"), generation=began_in)
    assert cache.get("/api/catalog?stale") is None
    cache.put("/api/catalog?fresh", Cached('W/"y"', b"{}", "application/json"), generation=cache.generation)
    assert cache.get("/api/catalog?fresh") is not None


async def test_the_total_of_a_search_is_remembered_only_while_the_catalog_is_unchanged(
    catalog: Any, admin: dict[str, str]
) -> None:
    client, up, server = catalog

    async def total(limit: int = 1) -> int:
        body = await (await client.get("/api/catalog", params={"limit": limit, "offset": 1})).json()
        return int(body["total"])

    assert await total() == 4
    assert await total(limit=2) == 4  # another page of the same search: its total remembered
    url = str(server.make_url(up.serve("fietsen", openapi_30(title="Fietsenstallingen"))))
    await register(client, admin, "fietsen", url)
    await collected(client, "fietsen")
    await asyncio.sleep(0.3)  # the NOTIFY travels to the listener
    assert await total() == 5
