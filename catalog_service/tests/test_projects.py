"""Registration through /api/projects: the CRUD path, who may write, what is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from catalog_service.app import create_app
from catalog_service.keys import PLAIN_CALLS, POOL
from catalog_service.settings import Settings

PROBLEM = "application/problem+json"


def project(name: str = "parkeren", **extra: Any) -> dict[str, Any]:
    return {"name": name, "swagger_url": f"https://api.example.org/{name}/openapi.yaml", **extra}


async def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json(content_type=None)
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in json.dumps(body)
    return body


async def test_registered_project_can_be_read_changed_listed_and_deleted(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = await client.post(
        "/api/projects",
        json=project(
            title="Parkeren",
            description="Parkeervakken en vergunningen",
            tags=["mobiliteit", "parkeren"],
            contact={"name": "Team Parkeren", "email": "parkeren@example.org"},
        ),
        headers=admin,
    )
    assert created.status == 201
    assert created.headers["Location"] == "/api/projects/parkeren"
    body = await created.json()
    assert body["status"] == "pending"
    assert body["owner"] == "admin"
    assert body["tags"] == ["mobiliteit", "parkeren"]
    assert body["last_checked_at"] is None

    fetched = await client.get(created.headers["Location"])
    assert fetched.status == 200
    assert (await fetched.json())["contact"]["email"] == "parkeren@example.org"

    changed = await client.patch(
        "/api/projects/parkeren", json={"title": "Parkeren v2", "tags": [], "contact": None}, headers=admin
    )
    assert changed.status == 200
    changed_body = await changed.json()
    assert changed_body["title"] == "Parkeren v2"
    assert changed_body["tags"] == []
    assert changed_body["contact"] is None
    assert changed_body["description"] == "Parkeervakken en vergunningen"
    assert changed_body["updated_at"] > body["updated_at"]

    listed = await (await client.get("/api/projects")).json()
    assert listed["total"] == 1
    assert [item["name"] for item in listed["items"]] == ["parkeren"]

    deleted = await client.delete("/api/projects/parkeren", headers=admin)
    assert deleted.status == 204
    await assert_problem(await client.get("/api/projects/parkeren"), 404)
    assert (await (await client.get("/api/projects")).json())["total"] == 0


async def test_project_list_pages_by_name(client: TestClient, admin: dict[str, str]) -> None:
    for name in ["zeta", "alpha", "mid-1", "mid-2", "beta"]:
        assert (await client.post("/api/projects", json=project(name), headers=admin)).status == 201
    first = await (await client.get("/api/projects", params={"limit": 2})).json()
    second = await (await client.get("/api/projects", params={"limit": 2, "offset": 2})).json()
    beyond = await (await client.get("/api/projects", params={"offset": 10})).json()
    assert [p["name"] for p in first["items"]] == ["alpha", "beta"]
    assert [p["name"] for p in second["items"]] == ["mid-1", "mid-2"]
    assert first["total"] == second["total"] == beyond["total"] == 5
    assert beyond["items"] == []
    await assert_problem(await client.get("/api/projects", params={"limit": 0}), 400)
    await assert_problem(await client.get("/api/projects", params={"limit": 1001}), 400)
    await assert_problem(await client.get("/api/projects", params={"sort": "name"}), 400)


async def test_a_taken_name_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    assert (await client.post("/api/projects", json=project(), headers=admin)).status == 201
    body = await assert_problem(await client.post("/api/projects", json=project(), headers=admin), 409)
    assert "parkeren" in body["detail"]


async def test_concurrent_registrations_of_one_name_give_one_201_and_one_409(
    client: TestClient, admin: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/projects", json=project("race"), headers=admin) for _ in range(2))
    )
    assert sorted(r.status for r in responses) == [201, 409]


async def test_write_access_matrix(client: TestClient, admin: dict[str, str], make_token: Any) -> None:
    alice = await make_token("alice")
    bob = await make_token("bob")
    ops = await make_token("ops", admin=True)

    # No token, a malformed header and an unknown token are all 401.
    await assert_problem(await client.post("/api/projects", json=project()), 401)
    await assert_problem(
        await client.post("/api/projects", json=project(), headers={"Authorization": "Basic eDp5"}),
        401,
    )
    await assert_problem(
        await client.post("/api/projects", json=project(), headers={"Authorization": "Bearer not-a-token"}),
        401,
    )

    created = await client.post("/api/projects", json=project("alices"), headers=alice)
    assert created.status == 201
    assert (await created.json())["owner"] == "alice"

    # Another owner may read but not change or delete.
    assert (await client.get("/api/projects/alices")).status == 200
    await assert_problem(await client.patch("/api/projects/alices", json={"title": "mine"}, headers=bob), 403)
    await assert_problem(await client.delete("/api/projects/alices", headers=bob), 403)
    await assert_problem(await client.patch("/api/projects/alices", json={"title": "x"}), 401)

    # The owner, an admin token and CATALOG_ADMIN_TOKEN may.
    assert (await client.patch("/api/projects/alices", json={"title": "A"}, headers=alice)).status == 200
    assert (await client.patch("/api/projects/alices", json={"title": "B"}, headers=ops)).status == 200
    assert (await client.patch("/api/projects/alices", json={"title": "C"}, headers=admin)).status == 200

    # A collection is asked for by the owner or an admin; another owner is refused
    # and nothing is asked; a project that is not there is a 404 to anyone. (The
    # collector runs here: a request asked for shows as its trigger until a
    # collection takes it, then in the collection's record.)
    pool = client.server.app[POOL]
    asked = """SELECT p.requested_trigger = 'refresh' OR EXISTS (
                   SELECT 1 FROM collections c WHERE c.project_id = p.id AND c.trigger = 'refresh')
               FROM projects p WHERE p.name = 'alices'"""
    await assert_problem(await client.post("/api/projects/alices/refresh", headers=bob), 403)
    await assert_problem(await client.post("/api/projects/alices/refresh"), 401)
    assert not await pool.fetchval(asked)
    for who in (alice, ops, admin):
        refreshed = await client.post("/api/projects/alices/refresh", headers=who)
        assert refreshed.status == 202
        assert (await refreshed.json())["title"] == "C"
        await assert_problem(await client.post("/api/projects/nobodys/refresh", headers=who), 404)
    assert (await client.delete("/api/projects/alices", headers=ops)).status == 204


@pytest.mark.parametrize(
    "swagger_url",
    [
        "ftp://example.org/openapi.yaml",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://",
        "https:///openapi.json",
        "http://:80/openapi.json",
        "https://example.org/" + "a" * 2000,
        "example.org/openapi.yaml",
        "",
    ],
)
async def test_urls_that_are_not_http_with_a_host_are_refused(
    client: TestClient, admin: dict[str, str], swagger_url: str
) -> None:
    await assert_problem(
        await client.post(
            "/api/projects", json={"name": "bad-url", "swagger_url": swagger_url}, headers=admin
        ),
        400,
    )
    assert (await (await client.get("/api/projects")).json())["total"] == 0


@pytest.mark.parametrize(
    "name", ["Parkeren", "par keren", "a", "-leading", "x" * 64, "naïve", "under_score", "", "owned-a\n"]
)
async def test_names_outside_the_pattern_are_refused(
    client: TestClient, admin: dict[str, str], name: str
) -> None:
    await assert_problem(await client.post("/api/projects", json=project(name), headers=admin), 400)


async def test_a_63_character_name_is_accepted(client: TestClient, admin: dict[str, str]) -> None:
    assert (await client.post("/api/projects", json=project("x" * 63), headers=admin)).status == 201


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":',
        b"[1, 2, 3]",
        b'"just a string"',
        b"\xff\xfe not utf-8",
        json.dumps({"name": "ok-name"}).encode(),
        json.dumps({**project(), "unknown": 1}).encode(),
        json.dumps({**project(), "tags": "not-a-list"}).encode(),
        json.dumps({**project(), "contact": {"email": "not an email"}}).encode(),
        json.dumps({**project(), "title": "nul \u0000 inside"}).encode(),
        b'{"name": "lone-surrogate", "swagger_url": "https://x.org/\\ud800"}',
        json.dumps({**project(), "swagger_url": "https://exa mple.org/openapi.json"}).encode(),
    ],
)
async def test_malformed_bodies_are_400(client: TestClient, admin: dict[str, str], body: bytes) -> None:
    response = await client.post(
        "/api/projects", data=body, headers={**admin, "Content-Type": "application/json"}
    )
    await assert_problem(response, 400)


async def test_oversized_bodies_are_413_with_or_without_a_length(
    client: TestClient, admin: dict[str, str]
) -> None:
    huge = json.dumps({**project(), "description": "x" * (2 * 1024 * 1024)}).encode()
    headers = {**admin, "Content-Type": "application/json"}
    await assert_problem(await client.post("/api/projects", data=io.BytesIO(huge), headers=headers), 413)

    async def chunks() -> Any:
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    await assert_problem(await client.post("/api/projects", data=chunks(), headers=headers), 413)
    assert (await (await client.get("/api/projects")).json())["total"] == 0


async def test_form_and_other_non_json_bodies_are_415(client: TestClient, admin: dict[str, str]) -> None:
    for content_type in ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]:
        response = await client.post(
            "/api/projects",
            data=json.dumps(project()).encode(),
            headers={**admin, "Content-Type": content_type},
        )
        await assert_problem(response, 415)
    await assert_problem(
        await client.delete("/api/projects/x1", headers={**admin, "Content-Type": "multipart/form-data"}),
        415,
    )


async def test_patch_validates_like_post(client: TestClient, admin: dict[str, str]) -> None:
    assert (await client.post("/api/projects", json=project(), headers=admin)).status == 201
    await assert_problem(
        await client.patch("/api/projects/parkeren", json={"name": "other"}, headers=admin), 400
    )
    await assert_problem(
        await client.patch(
            "/api/projects/parkeren", json={"swagger_url": "file:///etc/passwd"}, headers=admin
        ),
        400,
    )
    await assert_problem(await client.patch("/api/projects/parkeren", json={}, headers=admin), 400)
    await assert_problem(await client.patch("/api/projects/nobody", json={"title": "x"}, headers=admin), 404)


async def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    await assert_problem(await client.get("/api/nothing-here"), 404)
    await assert_problem(await client.get("/nothing-here"), 404)
    not_allowed = await client.put("/api/projects")
    await assert_problem(not_allowed, 405)
    # RFC 9110: a 405 says which methods the resource does allow.
    assert set(not_allowed.headers["Allow"].split(",")) == {"GET", "POST"}
    assert (await client.request("TRACE", "/api/health")).headers["Allow"] == "GET"
    await assert_problem(await client.get("/api/projects/UPPER"), 400)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/catalog?limit=5000", "limit must be at most 1000"),
        ("/api/catalog?limit=0", "limit must be at least 1"),
        ("/api/catalog?limit=ten", "limit must be a whole number"),
        ("/api/catalog?limit=", "limit must be a whole number"),
        ("/api/catalog?tag=", "tag must not be empty"),
        ("/api/catalog?q=", "q must not be empty"),
        ("/api/catalog?q=%00", "q must not contain a NUL character"),
        (
            "/api/operations?method=FETCH",
            "method must be one of: GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE",
        ),
        ("/api/changes?breaking=", "breaking must be true or false"),
        ("/api/catalog?colour=red", "this operation takes no parameter named colour"),
    ],
)
async def test_a_bad_parameter_is_a_400_that_names_it_and_its_rule(
    client: TestClient, path: str, detail: str
) -> None:
    problem = await assert_problem(await client.get(path), 400)
    assert problem["detail"] == detail


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "ok-name"}, "the request body lacks the required field 'swagger_url'"),
        ({**project(), "colour": 1}, "the request body has a field the spec does not define: 'colour'"),
        ({**project(), "tags": ["ok", ""]}, "tags[1] must not be empty"),
        ({**project(), "contact": {"email": "not an email"}}, "contact.email must be a valid email"),
        ({**project(), "title": "x" * 201}, "title must be at most 200 characters long"),
        (
            {**project(), "title": "nul \u0000 inside"},
            "title contains a NUL character, which cannot be stored",
        ),
    ],
)
async def test_a_bad_body_is_a_400_that_names_the_field_and_its_rule(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], detail: str
) -> None:
    problem = await assert_problem(await client.post("/api/projects", json=body, headers=admin), 400)
    assert problem["detail"] == detail


async def test_deeply_nested_json_is_a_400_not_a_crash(client: TestClient, admin: dict[str, str]) -> None:
    deep = b"[" * 100_000
    headers = {**admin, "Content-Type": "application/json"}
    for path in ("/api/projects", "/api/validate"):
        problem = await assert_problem(await client.post(path, data=deep, headers=headers), 400)
        assert problem["detail"] == "the request body nests too deeply"


async def test_a_project_named_validate_gets_the_same_body_guard_as_any_other(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert (await client.post("/api/projects", json=project("validate"), headers=admin)).status == 201
    huge = json.dumps({"description": "x" * (2 * 1024 * 1024)})
    await assert_problem(
        await client.patch(
            "/api/projects/validate",
            data=io.BytesIO(huge.encode()),
            headers={**admin, "Content-Type": "application/json"},
        ),
        413,
    )
    await assert_problem(
        await client.patch(
            "/api/projects/validate",
            data="title: yaml",
            headers={**admin, "Content-Type": "application/yaml"},
        ),
        415,
    )


async def test_a_refresh_is_answered_exactly_as_connexion_answers_it(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str], make_token: Any
) -> None:
    """POST …/refresh with a plain path and token skips connexion's decorators
    (api/plain_queries): every answer is the one connexion gives, bytes and headers."""

    async def service(*, plain: bool) -> TestClient:
        # No collector: the project's answers stay the same from one call to the next.
        app = create_app(settings, validate_responses=True, run_scheduler=False, prestart_validators=False)
        if not plain:
            app[PLAIN_CALLS].clear()
        client: TestClient = await aiohttp_client(app)
        return client

    fast, slow = await service(plain=True), await service(plain=False)
    (key,) = fast.server.app[PLAIN_CALLS]
    plain = fast.server.app[PLAIN_CALLS][key]
    taken = []

    async def counted(request: Any, **arguments: Any) -> Any:
        taken.append(arguments)
        return await plain.handler(request, **arguments)

    fast.server.app[PLAIN_CALLS][key] = dataclasses.replace(plain, handler=counted)
    alice, bob = await make_token("alice"), await make_token("bob")
    ops = await make_token("ops", admin=True)
    assert (await fast.post("/api/projects", json=project("alices"), headers=alice)).status == 201
    token = alice["Authorization"].removeprefix("Bearer ")
    calls: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("alices", alice, {}),
        ("alices", ops, {}),
        ("alices", admin, {}),
        ("alices", bob, {}),
        ("nobodys", alice, {}),
        ("alices", {}, {}),
        ("alices", {"Authorization": "Bearer not-a-token"}, {}),
        ("alices", {"Authorization": "Bearer "}, {}),
        ("alices", {"Authorization": "Basic eDp5"}, {}),
        ("alices", {"Authorization": f"bearer {token}"}, {}),
        ("alices", {"Authorization": f"Bearer  {token}"}, {}),
        ("alices", {"Authorization": f"Bearer {token} x"}, {}),
        ("Alices", alice, {}),
        ("a", alice, {}),
        ("a" * 64, alice, {}),
        ("alices%0A", alice, {}),
        ("alices", alice, {"params": {"force": "1"}}),
        ("alices", alice, {"json": {}}),
        ("alices", {**alice, "Content-Type": "text/plain"}, {"data": b"x"}),
    ]
    statuses = []
    for name, headers, extra in calls:
        answers = []
        for client in (fast, slow):
            response = await client.post(f"/api/projects/{name}/refresh", headers=headers, **extra)
            kept = sorted((k, v) for k, v in response.headers.items() if k not in ("Date", "Server"))
            answers.append((response.status, kept, await response.read()))
        assert answers[0] == answers[1], (name, headers, extra)
        statuses.append(answers[0][0])
    assert statuses == [202, 202, 202, 403, 404, 401, 401, 401, 401, 202, 202, 401] + [400] * 5 + [202, 415]
    # Valid tokens with plain paths went the plain way (the handler answers 403 and
    # 404 itself); everything else went through connexion.
    assert taken == [{"name": "alices"}] * 4 + [{"name": "nobodys"}]
