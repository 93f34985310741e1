"""Changing an upstream document and refreshing shows the change, classified, everywhere."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from typing import Any

import feedparser
from aiohttp.test_utils import TestClient

from catalog_service.settings import Settings

from .conftest import collected, register
from .upstream import Upstream, openapi_30


async def refresh(client: TestClient, admin: dict[str, str], name: str) -> dict[str, Any]:
    before = await (await client.get(f"/api/projects/{name}")).json()
    assert (await client.post(f"/api/projects/{name}/refresh", headers=admin)).status == 202
    return await collected(client, name, after=before["last_checked_at"])


async def test_a_changed_document_shows_its_classified_changes_in_the_api_feed_and_pages(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
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
    kinds = {(c["kind"], c["path"], c["breaking"]) for c in change["changes"]}
    assert ("path-removed", "/meldingen/2", True) in kinds
    assert ("operation-added", "/meldingen/9", False) in kinds
    assert ("unannounced-breaking-change", None, True) in kinds
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
    assert "BREAKING" in feed.entries[1].summary and "/meldingen/2" in feed.entries[1].summary
    assert feed.entries[1].link.endswith("/apis/meldingen#changes")
    breaking_feed = feedparser.parse(await (await client.get("/api/changes.atom?breaking=true")).read())
    assert [e.title for e in breaking_feed.entries] == ["meldingen 1.0.0 → 1.1.0: 4 breaking changes"]

    index = await (await client.get("/")).text()
    assert 'href="/apis/meldingen#changes"><span class="badge breaking">breaking</span>' in index
    assert 'href="/apis/afval#changes"><span class="badge compatible">compatible</span>' in index
    page = await (await client.get("/apis/meldingen")).text()
    assert 'id="changes"' in page and "path /meldingen/2 was removed with all its operations" in page
