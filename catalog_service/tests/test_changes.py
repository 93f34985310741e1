"""Changing an upstream document and refreshing shows the change, classified, everywhere."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from typing import Any

import feedparser
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.settings import Settings

from .conftest import collected, register
from .upstream import Upstream, openapi_30


async def refresh(client: TestClient, admin: dict[str, str], name: str) -> dict[str, Any]:
    before = await (await client.get(f"/api/projects/{name}")).json()
    assert (await client.post(f"/api/projects/{name}/refresh", headers=admin)).status == 202
    return await collected(client, name, after=before["last_checked_at"])


async def test_a_changed_document_shows_its_classified_changes_in_the_api_feed_and_pages(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any, db: Any
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(
        dataclasses.replace(settings, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    v1 = openapi_30(title="Meldingen", version="1.0.0", paths=3)
    await register(client, admin, "meldingen", str(server.make_url(up.serve("meldingen", v1))))
    other = openapi_30(title="Afval", version="1.0.0")
    await register(client, admin, "afval", str(server.make_url(up.serve("afval", other))))
    await collected(client, "meldingen")
    await collected(client, "afval")
    assert (await (await client.get("/api/changes")).json())["total"] == 0

    # Same bytes again: no change.
    await refresh(client, admin, "meldingen")
    assert (await (await client.get("/api/catalog/meldingen/changes")).json())["total"] == 0

    # A broken version in between changes nothing that is published...
    up.serve("meldingen", b"{ broken")
    assert (await refresh(client, admin, "meldingen"))["status"] == "invalid"
    # ...and the next valid one is compared with the last valid one.
    v2 = copy.deepcopy(v1)
    v2["info"]["version"] = "1.1.0"
    del v2["paths"]["/meldingen/2"]
    v2["paths"]["/meldingen/9"] = copy.deepcopy(v1["paths"]["/meldingen/0"])
    v2["paths"]["/meldingen/9"]["get"]["operationId"] = "getMelding9"
    up.serve("meldingen", v2)
    assert (await refresh(client, admin, "meldingen"))["status"] == "valid"

    other_v2 = copy.deepcopy(other)
    other_v2["info"]["version"] = "1.0.1"
    up.serve("afval", other_v2)
    await refresh(client, admin, "afval")

    changes = await (await client.get("/api/catalog/meldingen/changes")).json()
    assert changes["total"] == 1
    [change] = changes["items"]
    assert change["breaking"] is True
    assert (change["from_version"], change["to_version"]) == ("1.0.0", "1.1.0")
    kinds = {(c["id"], c["path"], c["level"]) for c in change["changes"]}
    assert ("api-path-removed-without-deprecation", "/meldingen/2", "breaking") in kinds
    assert ("endpoint-added", "/meldingen/9", "info") in kinds
    assert ("unannounced-breaking-change", None, "breaking") in kinds
    removed = next(c for c in change["changes"] if c["id"] == "api-path-removed-without-deprecation")
    assert (removed["old_pointer"], removed["new_pointer"]) == ("/paths/~1meldingen~12", None)
    versions = await (await client.get("/api/catalog/meldingen/versions")).json()
    by_version = {v["version"]: v["sha256"] for v in versions["items"] if v["valid"]}
    assert (change["from_sha256"], change["to_sha256"]) == (by_version["1.0.0"], by_version["1.1.0"])

    everything = await (await client.get("/api/changes")).json()
    assert [c["project"] for c in everything["items"]] == ["afval", "meldingen"]  # newest first
    breaking = await (await client.get("/api/changes", params={"breaking": "true"})).json()
    assert [c["project"] for c in breaking["items"]] == ["meldingen"]

    feed_response = await client.get("/api/changes.atom")
    assert feed_response.content_type == "application/atom+xml"
    feed = feedparser.parse(await feed_response.read())
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert [e.title for e in feed.entries] == [
        "afval 1.0.0 → 1.0.1: 1 change",
        "meldingen 1.0.0 → 1.1.0: 4 breaking changes",
    ]
    # The sentences, grouped by what they are about.
    summary = feed.entries[1].summary.splitlines()
    assert summary[0] == "The whole API"
    assert "/meldingen/2" in summary and "GET /meldingen/9" in summary
    assert (
        summary[summary.index("/meldingen/2") + 1]
        == "  [breaking] path /meldingen/2 was removed without deprecation (api-path-removed-without-deprecation)"
    )
    assert feed.entries[1].link.endswith("/apis/meldingen#changes")
    breaking_feed = feedparser.parse(await (await client.get("/api/changes.atom?breaking=true")).read())
    assert [e.title for e in breaking_feed.entries] == ["meldingen 1.0.0 → 1.1.0: 4 breaking changes"]

    index = await (await client.get("/")).text()
    assert 'href="/apis/meldingen#changes"><span class="badge breaking">breaking</span>' in index
    assert 'href="/apis/afval#changes"><span class="badge compatible">compatible</span>' in index
    page = await (await client.get("/apis/meldingen")).text()
    assert 'id="changes"' in page and "path /meldingen/2 was removed without deprecation" in page
    assert '<p class="about"><code>GET /meldingen/9</code></p>' in page
    assert '<span class="badge breaking">breaking</span> path /meldingen/2' in page

    # A change recorded before changes had ids and levels reads as one that has them.
    await db.execute(
        """
        UPDATE changes SET changes = (
            SELECT jsonb_agg(c - 'id' - 'level' - 'old_pointer' - 'new_pointer') FROM jsonb_array_elements(changes) c)
        """
    )
    # (another page size: not the answer cached before)
    old = await (await client.get("/api/catalog/meldingen/changes", params={"limit": "7"})).json()
    old = old["items"][0]["changes"]
    assert {(c["id"], c["level"]) for c in old} >= {("api-path-removed-without-deprecation", "breaking")}
    assert all(c["old_pointer"] is None for c in old)


async def test_two_documents_are_compared_without_storing_anything(client: TestClient, db: Any) -> None:
    base = openapi_30(paths=3)
    revision = copy.deepcopy(base)
    del revision["paths"]["/meldingen/2"]
    revision["paths"]["/meldingen/9"] = copy.deepcopy(base["paths"]["/meldingen/0"])
    revision["paths"]["/meldingen/9"]["get"]["operationId"] = "getMelding9"
    answer = await client.post("/api/diff", json={"base": base, "revision": revision})
    assert answer.status == 200, await answer.text()
    diff = await answer.json()
    assert diff["breaking"] is True
    kinds = {c["id"]: c for c in diff["changes"] if c["breaking"]}
    assert kinds["api-path-removed-without-deprecation"]["path"] == "/meldingen/2"
    assert "unannounced-breaking-change" in kinds  # and the major version stayed 1
    assert any(c["path"] == "/meldingen/9" and not c["breaking"] for c in diff["changes"])

    # Only an addition: nothing breaks.
    same = await (await client.post("/api/diff", json={"base": revision, "revision": {**revision}})).json()
    assert (same["breaking"], same["changes"], same["base"]["valid"], same["revision"]["valid"]) == (
        False,
        [],
        True,
        True,
    )
    # Nothing was stored, and no project exists.
    assert await db.fetchval("SELECT count(*) FROM documents") == 0


async def test_comparing_a_document_that_is_not_valid_says_which_and_why(client: TestClient) -> None:
    broken = {"openapi": "3.0.3", "info": {"title": "x"}, "paths": {}}
    answer = await client.post("/api/diff", json={"base": openapi_30(), "revision": broken})
    assert answer.status == 200
    verdicts = await answer.json()
    assert verdicts["base"]["valid"] is True and verdicts["revision"]["valid"] is False
    assert "version" in verdicts["revision"]["errors"][0]["message"]
    assert verdicts["changes"] == [] and verdicts["breaking"] is False
    missing = await client.post("/api/diff", json={"base": openapi_30()})
    assert missing.status == 400
    as_yaml = await client.post("/api/diff", data=b"base: {}\n", headers={"Content-Type": "application/yaml"})
    assert as_yaml.status == 415


async def test_any_two_stored_versions_are_compared_on_request(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    v1 = openapi_30(paths=3)
    v2 = {**copy.deepcopy(v1), "info": {"title": "Meldingen", "version": "2.0.0"}}
    del v2["paths"]["/meldingen/2"]
    v3 = {**copy.deepcopy(v2), "info": {"title": "Meldingen", "version": "3.0.0"}}
    del v3["paths"]["/meldingen/1"]
    await register(collecting, admin, "meldingen", str(server.make_url(up.serve("meldingen", v1))))
    checked = await collected(collecting, "meldingen")
    for version in (v2, v3):
        up.serve("meldingen", version)
        await collecting.post("/api/projects/meldingen/refresh", headers=admin)
        checked = await collected(collecting, "meldingen", after=checked["last_checked_at"])

    # The first and the last, skipping the one between: both removals at once.
    answer = await collecting.get("/api/catalog/meldingen/changes", params={"from": "1.0.0", "to": "3.0.0"})
    assert answer.status == 200, await answer.text()
    [item] = (await answer.json())["items"]
    assert (item["from_version"], item["to_version"], item["breaking"]) == ("1.0.0", "3.0.0", True)
    removed = {c["path"] for c in item["changes"] if c["id"] == "api-path-removed-without-deprecation"}
    assert removed == {"/meldingen/1", "/meldingen/2"}
    # Backwards, by SHA-256: the same paths come back, and nothing breaks.
    back = await (
        await collecting.get(
            "/api/catalog/meldingen/changes", params={"from": item["to_sha256"], "to": item["from_sha256"]}
        )
    ).json()
    assert back["items"][0]["breaking"] is False
    assert {c["path"] for c in back["items"][0]["changes"] if c["path"]} >= {"/meldingen/1", "/meldingen/2"}

    unknown = await collecting.get("/api/catalog/meldingen/changes", params={"from": "9.9.9", "to": "3.0.0"})
    assert unknown.status == 404 and "9.9.9" in (await unknown.json())["detail"]
    # One of them alone: since (or up to) the published version.
    since = await (await collecting.get("/api/catalog/meldingen/changes", params={"from": "1.0.0"})).json()
    assert since["items"][0]["to_version"] == "3.0.0" and since["items"][0]["changes"] == item["changes"]
