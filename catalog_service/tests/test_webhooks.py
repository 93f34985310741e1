"""Webhooks: owners hear when their API breaks, changes, recovers or goes invalid,
signed as the Standard Webhooks specification says, through the collector's network
policy, retried until delivered, and never lost or doubled by replicas."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks.webhooks import WebhookVerificationError

from catalog_service.settings import Settings
from catalog_service.store import webhooks as webhooks_store
from catalog_service.webhooks import events

from .conftest import ADMIN_TOKEN, LOOPBACK, collected
from .receiver import Receiver
from .test_replicas import PROJECTS, register_many, start_replicas, stop
from .upstream import PARKEREN, Upstream, openapi_30

ALL_EVENTS = list(events.EVENT_TYPES)

# Version 2.2.0: the POST of /vergunningen is gone (clients calling it break), and a
# plain-http server without a version in its URL costs design-rules points.
PARKEREN_2_2 = copy.deepcopy(PARKEREN)
PARKEREN_2_2["info"]["version"] = "2.2.0"
del PARKEREN_2_2["paths"]["/vergunningen"]["post"]
PARKEREN_2_2["servers"] = [{"url": "http://example.org/api"}]


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        allowed_networks=LOOPBACK,
        fetch_timeout=2,
        webhook_timeout=2,
        webhook_retry_seconds=0.2,
        public_url="https://catalog.example.org",
    )


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, TestServer]:
    rec = Receiver()
    return rec, await aiohttp_server(rec.app)


async def subscribe(
    client: TestClient, path: str, headers: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    response = await client.post(path, json={"url": url, "events": events}, headers=headers)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/webhooks/{created['id']}"
    return created


async def create_as_admin(base_url: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    """A subscription to every project's events, made on a running replica."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base_url}/api/webhooks",
            json={"url": url, "events": events or ALL_EVENTS},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response,
    ):
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
        return created


async def refresh(client: TestClient, name: str, headers: dict[str, str]) -> None:
    before = (await (await client.get(f"/api/projects/{name}")).json())["last_checked_at"]
    response = await client.post(f"/api/projects/{name}/refresh", headers=headers)
    assert response.status == 202
    await collected(client, name, after=before)


async def deliveries_once(
    client: TestClient,
    hook_id: str,
    headers: dict[str, str],
    status: str,
    *,
    count: int = 1,
    timeout: float = 20,
) -> list[dict[str, Any]]:
    """The subscription's deliveries once ``count`` of them have ``status`` (a receiver
    answers before the sender records the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        items: list[dict[str, Any]] = (
            await (await client.get(f"/api/webhooks/{hook_id}/deliveries", headers=headers)).json()
        )["items"]
        if sum(item["status"] == status for item in items) >= count or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.05)


async def test_owners_hear_of_every_change_signed_as_standard_webhooks_say(
    make_client: Any,
    hook_settings: Settings,
    upstream: tuple[Upstream, TestServer],
    receiver: tuple[Receiver, TestServer],
    admin: dict[str, str],
    make_token: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client(hook_settings)
    up, server = upstream
    rec, rec_server = receiver
    team = await make_token("team-parkeren")

    # An admin listens to every project, before there is any.
    everything = await subscribe(client, "/api/webhooks", admin, str(rec_server.make_url("/all")), ALL_EVENTS)
    assert everything["project"] is None and everything["secret"].startswith("whsec_")

    up.serve("parkeren", PARKEREN)
    response = await client.post(
        "/api/projects",
        json={
            "name": "parkeren",
            "swagger_url": str(server.make_url("/docs/parkeren")),
            "contact": {"team": "Parkeren & Mobiliteit", "email": "parkeren@example.org"},
        },
        headers=team,
    )
    assert response.status == 201
    assert (await response.json())["contact"]["team"] == "Parkeren & Mobiliteit"

    # "/team" has no subscription yet: a key nobody has, until it has one.
    secrets = {"/all": everything["secret"], "/team": "whsec_" + base64.b64encode(b"nobody" * 6).decode()}
    seen = 0

    async def next_round(count: int) -> dict[tuple[str, str], dict[str, Any]]:
        """The next ``count`` deliveries (sent in no promised order), by path and type,
        each verified with its own subscription's secret, and not with another's."""
        nonlocal seen
        arrived = (await rec.wait_for(seen + count))[seen:]
        seen += count
        found = {}
        for delivery in arrived:
            found[(delivery.path, delivery.event["type"])] = delivery.verified(secrets[delivery.path])
            with pytest.raises(WebhookVerificationError):
                delivery.verified(secrets["/team" if delivery.path == "/all" else "/all"])
        assert len(found) == count
        return found

    first = await next_round(2)
    assert set(first) == {("/all", "api.valid"), ("/all", "api.version.published")}
    published = first[("/all", "api.version.published")]
    data = published["data"]
    assert data["project"] == "parkeren" and data["title"] == "Parkeervergunningen"
    assert (data["status"], data["previous_status"]) == ("valid", "pending")
    assert data["version"]["version"] == "2.1.0" and len(data["version"]["sha256"]) == 64
    assert data["score"] == 88 and data["changes"] == []
    assert data["links"] == {
        "entry": "https://catalog.example.org/api/catalog/parkeren",
        "page": "https://catalog.example.org/apis/parkeren",
        "changes": "https://catalog.example.org/api/catalog/parkeren/changes",
    }
    assert published["timestamp"].endswith("Z")

    # The team listens to its own project, for what would make it act.
    mine = await subscribe(
        client,
        "/api/projects/parkeren/webhooks",
        team,
        str(rec_server.make_url("/team")),
        ["api.change.breaking", "api.invalid", "api.valid", "api.unreachable", "api.lint.score_dropped"],
    )
    assert mine["project"] == "parkeren" and mine["owner"] == "team-parkeren"
    secrets["/team"] = mine["secret"]

    # 2.2.0 drops an operation and loses design-rules points.
    up.serve("parkeren", PARKEREN_2_2)
    await refresh(client, "parkeren", team)
    second = await next_round(5)
    assert set(second) == {
        ("/all", "api.version.published"),
        ("/all", "api.change.breaking"),
        ("/all", "api.lint.score_dropped"),
        ("/team", "api.change.breaking"),
        ("/team", "api.lint.score_dropped"),
    }
    breaking = second[("/team", "api.change.breaking")]["data"]
    assert breaking["version"]["version"] == "2.2.0"
    assert breaking["previous_version"]["version"] == "2.1.0"
    assert breaking["changes_total"] == len(breaking["changes"]) >= 1
    assert all(change["breaking"] for change in breaking["changes"])
    assert any(
        (change["method"] or "").lower() == "post" and change["path"] == "/vergunningen"
        for change in breaking["changes"]
    ), breaking["changes"]
    dropped = second[("/team", "api.lint.score_dropped")]["data"]
    assert (dropped["previous_score"], dropped["score"]) == (88, 75)

    # A broken document, then none at all, then the good one back.
    up.serve("parkeren", b"openapi: 3.0.3\ninfo: {title: Kapot}\npaths: {}\n", "text/yaml")
    await refresh(client, "parkeren", team)
    third = await next_round(2)
    assert set(third) == {("/all", "api.invalid"), ("/team", "api.invalid")}
    invalid = third[("/team", "api.invalid")]["data"]
    assert (invalid["status"], invalid["previous_status"]) == ("invalid", "valid")
    assert "validation error" in invalid["error"]

    del up.docs["parkeren"]
    await refresh(client, "parkeren", team)
    fourth = await next_round(2)
    assert set(fourth) == {("/all", "api.unreachable"), ("/team", "api.unreachable")}
    unreachable = fourth[("/team", "api.unreachable")]["data"]
    assert unreachable["status"] == "unreachable" and "HTTP 404" in unreachable["error"]

    up.serve("parkeren", PARKEREN_2_2)
    await refresh(client, "parkeren", team)
    # Valid again, with the version published before: nothing new is published.
    fifth = await next_round(2)
    assert set(fifth) == {("/all", "api.valid"), ("/team", "api.valid")}
    back = fifth[("/team", "api.valid")]["data"]
    assert (back["status"], back["previous_status"]) == ("valid", "unreachable")
    await asyncio.sleep(0.5)
    assert len(rec.received) == seen  # and nothing more came

    # What was sent is on record, with the ids the receiver saw.
    deliveries = await deliveries_once(client, mine["id"], team, "delivered", count=5)
    assert len(deliveries) == 5
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert {d["attempts"] for d in deliveries} == {1}
    assert {d["id"] for d in deliveries} == {d.id for d in rec.received if d.path == "/team"}

    # The secret was shown once: never again, in any answer.
    for path in (
        f"/api/webhooks/{mine['id']}",
        "/api/projects/parkeren/webhooks",
        "/api/webhooks",
        f"/api/webhooks/{mine['id']}/deliveries",
    ):
        answer = await client.get(path, headers=admin)
        assert answer.status == 200
        text = await answer.text()
        assert mine["secret"] not in text and everything["secret"] not in text
        assert "secret" not in text
    # Nor in the log, which tells of every delivery.
    assert caplog.text.count(" to http://127.0.0.1:") >= seen
    assert mine["secret"] not in caplog.text and everything["secret"] not in caplog.text
    # The page shows whom to ask.
    page = await (await client.get("/apis/parkeren")).text()
    index = await (await client.get("/")).text()
    assert "Parkeren &amp; Mobiliteit" in page and "Parkeren &amp; Mobiliteit" in index


async def test_only_owners_and_admins_subscribe_read_and_delete(
    make_client: Any,
    hook_settings: Settings,
    receiver: tuple[Receiver, TestServer],
    admin: dict[str, str],
    make_token: Any,
    db: asyncpg.Connection,
) -> None:
    client = await make_client(dataclasses.replace(hook_settings, refresh_interval=3600))
    _, rec_server = receiver
    url = str(rec_server.make_url("/hook"))
    owner, stranger = await make_token("owner"), await make_token("stranger")
    response = await client.post(
        "/api/projects", json={"name": "pp", "swagger_url": "http://127.0.0.1:9/none"}, headers=owner
    )
    assert response.status == 201, await response.text()

    hook = await subscribe(client, "/api/projects/pp/webhooks", owner, url, ["api.valid"])
    refused = [
        await client.post(
            "/api/projects/pp/webhooks", json={"url": url, "events": ["api.valid"]}, headers=stranger
        ),
        await client.post("/api/webhooks", json={"url": url, "events": ["api.valid"]}, headers=owner),
        await client.get(f"/api/webhooks/{hook['id']}", headers=stranger),
        await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=stranger),
        await client.get("/api/projects/pp/webhooks", headers=stranger),
        await client.delete(f"/api/webhooks/{hook['id']}", headers=stranger),
    ]
    assert [r.status for r in refused] == [403] * 6
    for r in refused:
        assert r.content_type == "application/problem+json"
    assert (await client.get(f"/api/webhooks/{hook['id']}")).status == 401
    # The stranger sees none; the owner and an admin see it.
    assert (await (await client.get("/api/webhooks", headers=stranger)).json())["total"] == 0
    for headers in (owner, admin):
        listed = await (await client.get("/api/projects/pp/webhooks", headers=headers)).json()
        assert [w["id"] for w in listed["items"]] == [hook["id"]]
        assert (await client.get(f"/api/webhooks/{hook['id']}", headers=headers)).status == 200

    bad = [
        await client.post(
            "/api/projects/pp/webhooks", json={"url": url, "events": ["api.exploded"]}, headers=owner
        ),
        await client.post("/api/projects/pp/webhooks", json={"url": url, "events": []}, headers=owner),
        await client.post(
            "/api/projects/pp/webhooks", json={"url": "ftp://x/y", "events": ["api.valid"]}, headers=owner
        ),
        await client.post("/api/projects/pp/webhooks", json={"events": ["api.valid"]}, headers=owner),
    ]
    assert [r.status for r in bad] == [400] * 4
    missing = await client.post(
        "/api/projects/nope/webhooks", json={"url": url, "events": ["api.valid"]}, headers=admin
    )
    assert missing.status == 404
    assert (await client.get("/api/webhooks/wh_000000000000000000000000", headers=admin)).status == 404

    # A project has at most 20.
    for _ in range(19):
        await subscribe(client, "/api/projects/pp/webhooks", owner, url, ["api.invalid"])
    over = await client.post(
        "/api/projects/pp/webhooks", json={"url": url, "events": ["api.valid"]}, headers=owner
    )
    assert over.status == 403 and "20 webhooks" in (await over.json())["detail"]

    assert (await client.delete(f"/api/webhooks/{hook['id']}", headers=owner)).status == 204
    assert (await client.get(f"/api/webhooks/{hook['id']}", headers=owner)).status == 404
    # A project's subscriptions go with it.
    assert (await client.delete("/api/projects/pp", headers=owner)).status == 204
    assert await db.fetchval("SELECT count(*) FROM webhooks") == 0
    # Secrets are kept to sign, and are never written to the log or an answer.
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == 0


async def test_a_url_the_network_policy_refuses_is_refused_and_never_called(
    make_client: Any,
    hook_settings: Settings,
    aiohttp_server: Any,
    upstream: tuple[Upstream, TestServer],
    admin: dict[str, str],
    db: asyncpg.Connection,
) -> None:
    # The catalog may reach 127.0.0.1 only; a listener waits on 127.0.0.2.
    only = (ipaddress.ip_network("127.0.0.1/32"),)
    client = await make_client(dataclasses.replace(hook_settings, allowed_networks=only))
    forbidden = Receiver()
    forbidden_server = await aiohttp_server(forbidden.app, host="127.0.0.2")
    target = str(forbidden_server.make_url("/hook"))
    for url, reason in [
        (target, "refused by the network policy: 127.0.0.2 is not a public address"),
        (f"http://localhost.invalid:{forbidden_server.port}/hook", "cannot be resolved"),
        ("http://2130706434/hook", "in disguise"),
        ("http://[::ffff:127.0.0.2]/hook", "refused by the network policy"),
        ("http://169.254.169.254/latest/meta-data", "refused by the network policy"),
    ]:
        response = await client.post("/api/webhooks", json={"url": url, "events": ALL_EVENTS}, headers=admin)
        assert response.status == 400, url
        assert reason in (await response.json())["detail"], url

    # A name that resolved to an allowed address when subscribed may point elsewhere
    # later: the policy is applied again at every connection.
    await db.execute(
        """
        INSERT INTO webhooks (id, url, events, secret, owner)
        VALUES ('wh_111111111111111111111111', $1, ARRAY['api.valid'], 'whsec_' || encode('0123456789abcdef0123456789abcdef', 'base64'), 'admin')
        """,
        target,
    )
    up, server = upstream
    up.serve("pp", PARKEREN)
    response = await client.post(
        "/api/projects", json={"name": "pp", "swagger_url": str(server.make_url("/docs/pp"))}, headers=admin
    )
    assert response.status == 201
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = await db.fetchrow("SELECT attempts, last_error FROM webhook_deliveries")
        if row is not None and row["attempts"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row["attempts"] >= 2
    assert "refused by the network policy: 127.0.0.2" in row["last_error"]
    assert forbidden.received == []


async def test_a_receiver_down_for_a_while_gets_the_delivery_after_retries_with_one_id(
    make_client: Any,
    hook_settings: Settings,
    upstream: tuple[Upstream, TestServer],
    receiver: tuple[Receiver, TestServer],
    admin: dict[str, str],
) -> None:
    client = await make_client(hook_settings)
    up, server = upstream
    rec, rec_server = receiver
    rec.answers = [503, 502, 500]
    hook = await subscribe(client, "/api/webhooks", admin, str(rec_server.make_url("/hook")), ["api.valid"])
    up.serve("pp", PARKEREN)
    await client.post(
        "/api/projects", json={"name": "pp", "swagger_url": str(server.make_url("/docs/pp"))}, headers=admin
    )

    attempts = await rec.wait_for(4)
    assert len({a.id for a in attempts}) == 1
    for attempt in attempts:
        assert attempt.verified(hook["secret"])["type"] == "api.valid"
    [delivery] = await deliveries_once(client, hook["id"], admin, "delivered")
    assert delivery["id"] == attempts[0].id
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    assert delivery["last_http_status"] == 204 and delivery["last_error"] is None
    # Each wait is about twice the one before (0.2 s, 0.4 s, 0.8 s here).
    stamps = [a.arrived for a in attempts]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.3 and gaps[2] >= 0.6, gaps
    metrics = await (await client.get("/metrics")).text()
    assert 'catalog_webhook_deliveries_total{outcome="retry"} 3.0' in metrics
    assert 'catalog_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics


async def test_a_delivery_retried_past_its_time_fails_and_can_be_sent_again(
    make_client: Any,
    hook_settings: Settings,
    upstream: tuple[Upstream, TestServer],
    receiver: tuple[Receiver, TestServer],
    admin: dict[str, str],
) -> None:
    client = await make_client(dataclasses.replace(hook_settings, webhook_retry_for=1.0))
    up, server = upstream
    rec, rec_server = receiver
    rec.answers = [500] * 1000
    hook = await subscribe(client, "/api/webhooks", admin, str(rec_server.make_url("/hook")), ["api.valid"])
    up.serve("pp", PARKEREN)
    await client.post(
        "/api/projects", json={"name": "pp", "swagger_url": str(server.make_url("/docs/pp"))}, headers=admin
    )

    deliveries_url = f"/api/webhooks/{hook['id']}/deliveries"
    [delivery] = await deliveries_once(client, hook["id"], admin, "failed")
    assert delivery["status"] == "failed"
    assert delivery["attempts"] >= 2 and delivery["next_attempt_at"] is None
    assert delivery["last_http_status"] == 500 and delivery["last_error"] == "HTTP 500 Internal Server Error"
    tried = len(rec.received)

    # The receiver is fixed; its owner asks for the delivery again.
    rec.answers = []
    again = await client.post(f"{deliveries_url}/{delivery['id']}/retry", headers=admin)
    assert again.status == 202 and (await again.json())["status"] == "pending"
    received = await rec.wait_for(tried + 1)
    assert received[-1].id == delivery["id"]
    assert received[-1].body == received[0].body
    [delivery] = await deliveries_once(client, hook["id"], admin, "delivered")
    assert delivery["status"] == "delivered" and delivery["attempts"] == tried + 1
    missing = await client.post(f"{deliveries_url}/msg_{'0' * 32}/retry", headers=admin)
    assert missing.status == 404


async def wait_for_rows(db: asyncpg.Connection, query: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await db.fetchval(query) == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query}: {await db.fetchval(query)}, not {expected}, after {timeout} s")


@pytest.mark.slow
async def test_two_replicas_deliver_a_burst_of_events_each_exactly_once(
    database_url: str,
    db: asyncpg.Connection,
    aiohttp_server: Any,
    receiver: tuple[Receiver, TestServer],
    tmp_path: Path,
) -> None:
    rec, rec_server = receiver
    up = Upstream()
    for i in range(PROJECTS):
        up.serve(f"p-{i:03d}", openapi_30(title=f"API {i}"))
    server = await aiohttp_server(up.app)
    replicas = await start_replicas(2, database_url, tmp_path)
    try:
        hook = await create_as_admin(replicas[0].base_url, str(rec_server.make_url("/all")))  # type: ignore[attr-defined]
        await register_many(db, str(server.make_url("")).rstrip("/"))
        # Every project: valid for the first time, and its first version published.
        received = await rec.wait_for(2 * PROJECTS, timeout=120)
        await wait_for_rows(
            db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'", 2 * PROJECTS, 30
        )
        await asyncio.sleep(2)  # nothing more comes
    finally:
        await asyncio.to_thread(stop, replicas)
    assert len(rec.received) == 2 * PROJECTS
    events = [(d.verified(hook["secret"])["data"]["project"], d.event["type"]) for d in received]
    assert sorted(events) == sorted(
        (f"p-{i:03d}", kind) for i in range(PROJECTS) for kind in ("api.valid", "api.version.published")
    )
    assert len({d.id for d in received}) == 2 * PROJECTS
    # Both replicas collected, and the outbox holds each event once, delivered at the first attempt.
    assert await db.fetchval("SELECT count(DISTINCT replica) FROM collections") == 2
    assert await db.fetchval("SELECT sum(attempts) FROM webhook_deliveries") == 2 * PROJECTS


@pytest.mark.slow
async def test_a_delivery_a_killed_replica_was_sending_is_sent_by_another_with_the_same_id(
    database_url: str,
    db: asyncpg.Connection,
    aiohttp_server: Any,
    receiver: tuple[Receiver, TestServer],
    tmp_path: Path,
) -> None:
    rec, rec_server = receiver
    rec.hang = 300  # the first attempt never gets its answer
    up = Upstream()
    up.serve("p-000", openapi_30())
    server = await aiohttp_server(up.app)
    # A long delivery timeout: only the victim's death frees what it was sending.
    extra = {"CATALOG_WEBHOOK_TIMEOUT": "120"}
    [victim] = await start_replicas(1, database_url, tmp_path, **extra)
    survivor: list[subprocess.Popen[bytes]] = []
    try:
        hook = await create_as_admin(victim.base_url, str(rec_server.make_url("/all")), ["api.valid"])  # type: ignore[attr-defined]
        await db.execute(
            "INSERT INTO projects (name, swagger_url, owner) VALUES ('p-000', $1, 'admin')",
            str(server.make_url("/docs/p-000")),
        )
        [first] = await rec.wait_for(1)
        leased = await db.fetchval("SELECT lease_owner FROM webhook_deliveries")
        assert leased is not None and f":{victim.pid}:" in leased
        survivor = await start_replicas(1, database_url, tmp_path, **extra)
        rec.hang = 0
        os.killpg(victim.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)
        began = time.monotonic()
        received = await rec.wait_for(2, timeout=60)
        await wait_for_rows(db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'", 1, 10)
    finally:
        await asyncio.to_thread(stop, [victim, *survivor])
    # Taken over once the victim had been silent for a heartbeat's grace, not its lease.
    assert time.monotonic() - began < 30
    assert received[1].id == first.id and received[1].body == first.body
    assert received[1].verified(hook["secret"])["type"] == "api.valid"
    row = await db.fetchrow("SELECT attempts, lease_owner FROM webhook_deliveries")
    assert row["attempts"] == 1 and row["lease_owner"] is None


@pytest.mark.parametrize(
    ("before", "after", "extra", "expected"),
    [
        (
            "pending",
            "valid",
            {"new_version": True, "published": True},
            ["api.valid", "api.version.published"],
        ),
        ("valid", "valid", {}, []),
        ("valid", "valid", {"new_version": True, "published": True}, ["api.version.published"]),
        ("valid", "invalid", {"new_version": True}, ["api.invalid"]),
        # Another broken version: the owners hear of it; the same one again: no.
        ("invalid", "invalid", {"new_version": True}, ["api.invalid"]),
        ("invalid", "invalid", {}, []),
        ("valid", "unreachable", {}, ["api.unreachable"]),
        ("unreachable", "unreachable", {}, []),
        ("unreachable", "valid", {}, ["api.valid"]),
        (
            "valid",
            "valid",
            {
                "new_version": True,
                "published": True,
                "changes": [{"breaking": False}, {"breaking": True}],
                "score_before": 90,
                "score": 89,
            },
            ["api.version.published", "api.change.breaking", "api.lint.score_dropped"],
        ),
        ("valid", "valid", {"published": True, "score_before": 80, "score": 90}, ["api.version.published"]),
    ],
)
def test_which_events_a_collection_makes(
    before: str, after: str, extra: dict[str, Any], expected: list[str]
) -> None:
    collected = events.Collected(name="p", title="P", status_before=before, status=after, **extra)
    assert events.event_types(collected) == expected


def test_an_event_body_is_storable_whatever_the_document_says() -> None:
    collected = events.Collected(
        name="p", title="Kapot\x00\ud800", status_before="valid", status="invalid", new_version=True
    )
    [(kind, body)] = events.events(
        collected, base_url="https://c.example", at=dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    )
    assert kind == "api.invalid" and body.isascii()
    assert json.loads(body)["data"]["title"] == "Kapot\x00\ud800"
    assert json.loads(body)["timestamp"] == "2026-11-24T00:00:00.000Z"


async def test_deliveries_done_with_are_forgotten_after_thirty_days(
    make_client: Any, hook_settings: Settings, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    client = await make_client(hook_settings)
    hook = await subscribe(client, "/api/webhooks", admin, "http://127.0.0.1:9/hook", ["api.valid"])
    await db.executemany(
        """
        INSERT INTO webhook_deliveries (id, webhook_id, type, body, status, created_at, give_up_at)
        VALUES ($1, $2, 'api.valid', '{}', $3, now() - make_interval(days => $4), now() + interval '1 day')
        """,
        [
            ("msg_" + "1" * 32, hook["id"], "delivered", 31),
            ("msg_" + "2" * 32, hook["id"], "failed", 45),
            ("msg_" + "3" * 32, hook["id"], "delivered", 2),
        ],
    )
    # (Pending ones stay however old: the sender is not running here to take them.)
    await db.execute(
        """
        INSERT INTO webhook_deliveries (id, webhook_id, type, body, created_at, next_attempt_at, give_up_at)
        VALUES ($1, $2, 'api.valid', '{}', now() - interval '40 days', '2100-01-01', '2100-01-02')
        """,
        "msg_" + "4" * 32,
        hook["id"],
    )
    assert await webhooks_store.prune_deliveries(db, older_than_days=30) == 2
    answer = await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=admin)
    assert answer.status == 200, await answer.text()
    left = {d["id"][4:5] for d in (await answer.json())["items"]}
    assert left == {"3", "4"}
