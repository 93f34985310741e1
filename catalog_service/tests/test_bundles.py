"""Documents split over many files: fetched through the guarded fetcher, bundled into
one self-contained document, judged as openapi-spec-validator judges the original."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from catalog_service.settings import Settings

from .conftest import attempts, collected, register
from .split import dereferenced, split
from .upstream import SWAGGER_2, YAML_BOMB, Upstream

SPECS = Path(__file__).parent / "specs"


def original(name: str) -> dict[str, Any]:
    if name == "swagger-2.0":
        return json.loads(json.dumps(SWAGGER_2))
    text = (SPECS / name).read_text()
    loaded = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    return json.loads(json.dumps(loaded))  # YAML's 200: is the key "200", as the validator reads it


def reference_verdict(document: dict[str, Any]) -> bool:
    try:
        validate(document)
    except OpenAPIValidationError:
        return False
    return True


def serve_split(up: Upstream, server: TestServer, name: str, document: dict[str, Any]) -> str:
    for path, body in split(document).items():
        up.serve(f"{name}/{path}", body, "application/json" if path.endswith(".json") else "application/yaml")
    return str(server.make_url(f"/docs/{name}/openapi.yaml"))


def refs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


@pytest.mark.parametrize(
    "document",
    [
        "codat.io__sync-for-commerce.json",  # OpenAPI 3.1
        "twilio.com__twilio_chat_v2.yaml",  # OpenAPI 3.0, YAML
        "googleapis.com__cloudbuild.json",  # rejected by openapi-spec-validator
        "swagger-2.0",
    ],
)
async def test_a_document_split_over_files_is_judged_and_published_as_one(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer], document: str
) -> None:
    up, server = upstream
    whole = original(document)
    url = serve_split(up, server, "split", whole)
    assert len(up.docs) > 3
    await register(collecting, admin, "split", url)
    project = await collected(collecting, "split")
    expected = reference_verdict(whole)
    assert project["status"] == ("valid" if expected else "invalid")
    # Every file was fetched, once.
    assert all(up.hits[f"/docs/{name}"] == 1 for name in up.docs)
    if not expected:
        entry = await (await collecting.get("/api/catalog/split")).json()
        assert entry["validation_errors"] and all(
            e["source"].startswith("http://127.0.0.1") for e in entry["validation_errors"]
        )
        return
    published = await (await collecting.get("/api/catalog/split/openapi.json")).json()
    # Self-contained: every reference stays inside the document.
    assert all(ref.startswith("#") for ref in refs_in(published))
    assert reference_verdict(published)
    # What it says is what the original says, reference for reference.
    assert dereferenced(published) == dereferenced(whole)
    # Readable: the original's components keep their names.
    sections = ("definitions",) if "swagger" in whole else tuple(whole.get("components", {}))
    for section in sections:
        kept = published[section] if "swagger" in whole else published["components"][section]
        mine = whole[section] if "swagger" in whole else whole["components"][section]
        assert set(mine) <= set(kept)
    yaml_text = await (await collecting.get("/api/catalog/split/openapi.yaml")).text()
    assert yaml.safe_load(yaml_text)["info"] == whole["info"]


def with_cycle(document: dict[str, Any]) -> dict[str, Any]:
    """A tree of categories: each schema in its own file, referring to the other."""
    document["components"]["schemas"]["Category"] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Categories"}},
        },
    }
    document["components"]["schemas"]["Categories"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Category"},
    }
    document["paths"]["/categories"] = {
        "get": {
            "responses": {
                "200": {
                    "description": "the tree",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Categories"}}},
                }
            }
        }
    }
    return document


async def test_a_cycle_across_files_becomes_references_inside_the_bundle(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    whole = with_cycle(original("azure.com__cost-management-costmanagement.json"))
    await register(collecting, admin, "tree", serve_split(up, server, "tree", whole))
    assert (await collected(collecting, "tree"))["status"] == "valid"
    published = await (await collecting.get("/api/catalog/tree/openapi.json")).json()
    schemas = published["components"]["schemas"]
    assert schemas["Categories"]["items"] == {"$ref": "#/components/schemas/Category"}
    assert schemas["Category"]["properties"]["children"]["items"] == {
        "$ref": "#/components/schemas/Categories"
    }
    assert dereferenced(published) == dereferenced(whole)


async def test_an_unchanged_bundle_costs_one_conditional_get_per_file_and_no_validation(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    whole = original("twilio.com__twilio_chat_v2.yaml")
    await register(collecting, admin, "chat", serve_split(up, server, "chat", whole))
    first = await collected(collecting, "chat")
    validations = re.findall(
        r"catalog_validation_duration_seconds_count (\S+)", await (await collecting.get("/metrics")).text()
    )
    asked = len(up.if_none_match)
    await collecting.post("/api/projects/chat/refresh", headers=admin)
    second = await collected(collecting, "chat", after=first["last_checked_at"])
    assert second["status"] == "valid" and second["last_changed_at"] == first["last_changed_at"]
    latest = (await attempts(collecting, "chat"))[0]
    assert (latest["outcome"], latest["http_status"]) == ("unchanged", 304)
    # One conditional request per file, each answered 304.
    conditional = up.if_none_match[asked:]
    assert len(conditional) == len(up.docs) and all(conditional)
    metrics = await (await collecting.get("/metrics")).text()
    assert re.findall(r"catalog_validation_duration_seconds_count (\S+)", metrics) == validations

    # One referenced file changes: a new version, and the change is recorded.
    name = next(n for n in up.docs if "/paths/" in n and n.endswith(".yaml"))
    item = yaml.safe_load(up.docs[name][0])
    method = next(m for m in ("get", "post", "delete") if m in item)
    item[method]["summary"] = "A summary that changed"
    up.serve(name, yaml.safe_dump(item), "application/yaml")
    await collecting.post("/api/projects/chat/refresh", headers=admin)
    third = await collected(collecting, "chat", after=second["last_checked_at"])
    assert third["last_changed_at"] != first["last_changed_at"]
    published = await (await collecting.get("/api/catalog/chat/openapi.json")).json()
    assert "A summary that changed" in json.dumps(published)


async def test_a_broken_file_of_a_bundle_is_named_with_the_pointer_in_it(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    whole = original("azure.com__cost-management-costmanagement.json")
    url = serve_split(up, server, "costs", whole)
    await register(collecting, admin, "costs", url)
    good = await collected(collecting, "costs")
    assert good["status"] == "valid"
    # A schema file goes wrong: its type is no JSON Schema type.
    name = next(n for n in up.docs if "/components/schemas/" in n and n.endswith(".yaml"))
    schema = yaml.safe_load(up.docs[name][0])
    schema["type"] = "thing"
    up.serve(name, yaml.safe_dump(schema), "application/yaml")
    await collecting.post("/api/projects/costs/refresh", headers=admin)
    broken = await collected(collecting, "costs", after=good["last_checked_at"])
    assert broken["status"] == "invalid"
    entry = await (await collecting.get("/api/catalog/costs")).json()
    # The error is told in the file it is in; the pointer is in that file ('': all of it).
    source = str(server.make_url(f"/docs/{name}"))
    assert any(e["source"] == source and e["path"] == "" for e in entry["validation_errors"])
    # The last valid bundle stays published.
    assert entry["version"] == whole["info"]["version"]
    assert (await collecting.get("/api/catalog/costs/openapi.json")).status == 200


async def test_a_missing_file_fails_the_collection_naming_it_and_keeps_the_bundle_published(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    url = serve_split(up, server, "gone", original("twilio.com__twilio_chat_v2.yaml"))
    await register(collecting, admin, "gone", url)
    good = await collected(collecting, "gone")
    name = next(n for n in up.docs if "/components/" in n)
    del up.docs[name]
    await collecting.post("/api/projects/gone/refresh", headers=admin)
    failed = await collected(collecting, "gone", after=good["last_checked_at"])
    assert failed["status"] == "unreachable"
    latest = (await attempts(collecting, "gone"))[0]
    assert (
        latest["outcome"] == "unreachable" and f"/docs/{name}" in latest["error"] and "404" in latest["error"]
    )
    assert (await collecting.get("/api/catalog/gone/openapi.json")).status == 200


async def test_a_reference_to_a_forbidden_address_is_refused_and_never_called(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    allowed, forbidden = Upstream(), Upstream()
    forbidden.serve("schema.yaml", {"type": "string"})
    allowed_server = await aiohttp_server(allowed.app, host="127.0.0.1")
    forbidden_server = await aiohttp_server(forbidden.app, host="127.0.0.2")
    client = await make_client(
        dataclasses.replace(settings, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    )
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Sneaky", "version": "1"},
        "paths": {},
        "components": {"schemas": {"Secret": {"$ref": str(forbidden_server.make_url("/docs/schema.yaml"))}}},
    }
    await register(client, admin, "sneaky", str(allowed_server.make_url(allowed.serve("root", document))))
    assert (await collected(client, "sneaky"))["status"] == "unreachable"
    [attempt] = await attempts(client, "sneaky")
    assert attempt["outcome"] == "refused" and "127.0.0.2" in attempt["error"]
    assert sum(forbidden.hits.values()) == 0


async def test_the_limits_hold_over_the_whole_bundle(
    make_client: Any,
    collector_settings: Settings,
    admin: dict[str, str],
    upstream: tuple[Upstream, TestServer],
) -> None:
    up, server = upstream
    whole = original("twilio.com__twilio_chat_v2.yaml")
    url = serve_split(up, server, "many", whole)
    few_files = await make_client(dataclasses.replace(collector_settings, max_bundle_files=5))
    await register(few_files, admin, "many", url)
    assert (await collected(few_files, "many"))["status"] == "unreachable"
    [attempt] = await attempts(few_files, "many")
    assert "CATALOG_MAX_BUNDLE_FILES" in attempt["error"]
    # Each file is small; all of them together are not.
    largest = max(len(body) for body, _ in up.docs.values())
    small = await make_client(dataclasses.replace(collector_settings, max_spec_bytes=largest * 3))
    await register(small, admin, "large", url)
    assert (await collected(small, "large"))["status"] == "unreachable"
    [attempt] = await attempts(small, "large")
    assert "CATALOG_MAX_SPEC_BYTES" in attempt["error"]


async def test_validate_bundles_a_url_and_explains_a_posted_document_with_references(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    url = serve_split(up, server, "check", original("codat.io__sync-for-commerce.json"))
    by_url = await collecting.post("/api/validate", json={"swagger_url": url}, headers=admin)
    assert by_url.status == 200, await by_url.text()
    assert (await by_url.json())["valid"] is True
    posted = await collecting.post(
        "/api/validate", data=up.docs["check/openapi.yaml"][0], headers={"Content-Type": "application/yaml"}
    )
    verdict = await posted.json()
    assert verdict["valid"] is False
    assert "cannot be resolved without its URL" in verdict["errors"][0]["message"]


BAD_PARTS: dict[str, tuple[str, bytes, str]] = {
    "html": ("part.yaml", b"<!doctype html><p>Sign in</p>", "HTML"),
    "yaml-bomb": ("part.yaml", YAML_BOMB.encode(), "alias"),
    "nothing-there": ("part.yaml#/components/schemas/Missing", b"type: string\n", "points to nothing"),
    "anchor": ("part.yaml#Thing", b"type: string\n", "only JSON pointers"),
}


@pytest.mark.parametrize("name", list(BAD_PARTS))
async def test_a_bad_referenced_file_makes_the_document_invalid_naming_it(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer], name: str
) -> None:
    up, server = upstream
    ref, body, reason = BAD_PARTS[name]
    up.serve(f"{name}/part.yaml", body, "application/yaml")
    root = {
        "openapi": "3.0.3",
        "info": {"title": "Parts", "version": "1"},
        "paths": {},
        "components": {"schemas": {"Part": {"$ref": ref}}},
    }
    await register(collecting, admin, name, str(server.make_url(up.serve(f"{name}/openapi.json", root))))
    project = await collected(collecting, name)
    [attempt] = await attempts(collecting, name)
    assert project["status"] == "invalid" and attempt["outcome"] == "invalid", attempt
    assert reason in attempt["error"]
    entry = await (await collecting.get(f"/api/catalog/{name}")).json()
    if name != "anchor":
        assert entry["validation_errors"][0]["source"] == str(server.make_url(f"/docs/{name}/part.yaml"))
    assert (await collecting.get("/api/health")).status == 200


async def test_the_operations_of_path_items_kept_in_components_are_listed(
    collecting: TestClient, admin: dict[str, str], upstream: tuple[Upstream, TestServer]
) -> None:
    up, server = upstream
    whole = original("codat.io__sync-for-commerce.json")
    await register(collecting, admin, "ops", serve_split(up, server, "ops", whole))
    assert (await collected(collecting, "ops"))["status"] == "valid"
    published = await (await collecting.get("/api/catalog/ops/openapi.json")).json()
    assert published["components"]["pathItems"]  # OpenAPI 3.1 keeps them there
    count = sum(
        1
        for item in whole["paths"].values()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    )
    entry = await (await collecting.get("/api/catalog/ops")).json()
    assert entry["operations_count"] == count > 0
    found = await (await collecting.get("/api/operations", params={"project": "ops", "limit": "200"})).json()
    assert found["total"] == count


def test_parts_of_the_same_name_from_two_files_both_keep_a_place() -> None:
    from catalog_service.collector.bundle import bundle

    root = "https://api.example.org/openapi.yaml"
    files: dict[str, Any] = {
        root: {
            "openapi": "3.0.3",
            "info": {"title": "Two errors", "version": "1"},
            "paths": {
                "/a": {"$ref": "a/paths.yaml#/~1a"},
                "/b": {"$ref": "b/paths.yaml#/~1b"},
            },
            "components": {"schemas": {"Shared": {"type": "string"}}},
        },
        "https://api.example.org/a/paths.yaml": {
            "/a": {"get": {"responses": {"400": {"$ref": "errors.yaml#/Error"}}}},
        },
        "https://api.example.org/b/paths.yaml": {
            "/b": {"get": {"responses": {"400": {"$ref": "errors.yaml#/Error"}}}},
        },
        "https://api.example.org/a/errors.yaml": {
            "Error": {
                "description": "a's error",
                "content": {
                    "application/json": {"schema": {"$ref": "../openapi.yaml#/components/schemas/Shared"}}
                },
            }
        },
        "https://api.example.org/b/errors.yaml": {"Error": {"description": "b's error"}},
    }
    document = bundle(files, root, "openapi-3.0").document
    responses = document["components"]["responses"]
    assert {r["description"] for r in responses.values()} == {"a's error", "b's error"}
    assert set(responses) == {"Error", "Error-2"}
    # A reference back into the root document stays a reference inside it.
    a_error = next(r for r in responses.values() if r["description"] == "a's error")
    assert a_error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Shared"}
    assert document["paths"]["/a"]["get"]["responses"]["400"]["$ref"].startswith("#/components/responses/")
