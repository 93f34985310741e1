"""Classification of changes between two versions, in Swagger 2.0 and OpenAPI 3.x alike."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from catalog_service.compare import diff

from .conftest import REAL_SPECS


def oas3() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1.0.0"},
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                                }
                            },
                        },
                        "404": {"description": "none"},
                    },
                },
                "post": {
                    "operationId": "addPet",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}},
                    },
                    "responses": {"201": {"description": "created"}},
                },
            },
            "/pets/{petId}": {
                "get": {
                    "parameters": [
                        {"name": "petId", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "status": {"type": "string", "enum": ["available", "sold"]},
                        "parent": {"$ref": "#/components/schemas/Pet"},
                    },
                },
                "NewPet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string", "enum": ["cat", "dog"]},
                        "tag": {"type": "string"},
                    },
                },
            }
        },
    }


def swagger2() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Pets", "version": "1.0.0"},
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "parameters": [{"name": "limit", "in": "query", "type": "integer"}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "schema": {"type": "array", "items": {"$ref": "#/definitions/Pet"}},
                        },
                        "404": {"description": "none"},
                    },
                },
                "post": {
                    "operationId": "addPet",
                    "parameters": [
                        {
                            "name": "body",
                            "in": "body",
                            "required": False,
                            "schema": {"$ref": "#/definitions/NewPet"},
                        }
                    ],
                    "responses": {"201": {"description": "created"}},
                },
            },
            "/pets/{petId}": {
                "get": {
                    "parameters": [{"name": "petId", "in": "path", "required": True, "type": "string"}],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Pet"}}},
                }
            },
        },
        "definitions": {
            "Pet": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "status": {"type": "string", "enum": ["available", "sold"]},
                    "parent": {"$ref": "#/definitions/Pet"},
                },
            },
            "NewPet": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["cat", "dog"]},
                    "tag": {"type": "string"},
                },
            },
        },
    }


def schemas(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["definitions"] if "swagger" in doc else doc["components"]["schemas"]


def add_query(doc: dict[str, Any], name: str, required: bool) -> None:
    param: dict[str, Any] = {"name": name, "in": "query", "required": required}
    param.update({"type": "string"} if "swagger" in doc else {"schema": {"type": "string"}})
    doc["paths"]["/pets"]["get"]["parameters"].append(param)


def require_body(doc: dict[str, Any]) -> None:
    post = doc["paths"]["/pets"]["post"]
    if "swagger" in doc:
        post["parameters"][0]["required"] = True
    else:
        post["requestBody"]["required"] = True


def limit_type(doc: dict[str, Any]) -> None:
    param = doc["paths"]["/pets"]["get"]["parameters"][0]
    (param if "swagger" in doc else param["schema"])["type"] = "string"


# Each change, and what the checker says of it: oasdiff's rule id and level (the
# findings besides the version's own change).
MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], set[tuple[str, str]]]] = {
    "operation added": (
        lambda d: d["paths"]["/pets/{petId}"].__setitem__(
            "delete", {"responses": {"204": {"description": "gone"}}}
        ),
        {("endpoint-added", "info")},
    ),
    "operation removed": (
        lambda d: d["paths"]["/pets"].pop("post"),
        {("api-removed-without-deprecation", "breaking")},
    ),
    "path removed": (
        lambda d: d["paths"].pop("/pets/{petId}"),
        {("api-path-removed-without-deprecation", "breaking")},
    ),
    "optional parameter added": (
        lambda d: add_query(d, "sort", False),
        {("new-optional-request-parameter", "info")},
    ),
    "required parameter added": (
        lambda d: add_query(d, "owner", True),
        {("new-required-request-parameter", "breaking")},
    ),
    "parameter removed": (
        lambda d: d["paths"]["/pets"]["get"]["parameters"].pop(0),
        {("request-parameter-removed", "possibly-breaking")},
    ),
    "parameter made required": (
        lambda d: d["paths"]["/pets"]["get"]["parameters"][0].__setitem__("required", True),
        {("request-parameter-became-required", "breaking")},
    ),
    "parameter type changed": (limit_type, {("request-parameter-type-changed", "breaking")}),
    "request body made required": (require_body, {("request-body-became-required", "breaking")}),
    "response property removed": (
        lambda d: schemas(d)["Pet"]["properties"].pop("name"),
        {("response-optional-property-removed", "possibly-breaking")},
    ),
    "required request property added": (
        lambda d: schemas(d)["NewPet"]["required"].append("tag"),
        {("request-property-became-required", "breaking")},
    ),
    "response property type changed": (
        lambda d: schemas(d)["Pet"]["properties"]["id"].__setitem__("type", "string"),
        {("response-property-type-changed", "breaking")},
    ),
    "response enum value added": (
        lambda d: schemas(d)["Pet"]["properties"]["status"]["enum"].append("pending"),
        {("response-property-enum-value-added", "possibly-breaking")},
    ),
    "response enum value removed": (
        lambda d: schemas(d)["Pet"]["properties"]["status"]["enum"].remove("sold"),
        {("response-property-enum-value-removed", "info")},
    ),
    "request enum value removed": (
        lambda d: schemas(d)["NewPet"]["properties"]["kind"]["enum"].remove("dog"),
        {("request-property-enum-value-removed", "breaking")},
    ),
    "request enum value added": (
        lambda d: schemas(d)["NewPet"]["properties"]["kind"]["enum"].append("fish"),
        {("request-property-enum-value-added", "info")},
    ),
    "success status removed": (
        lambda d: (
            d["paths"]["/pets"]["post"]["responses"].__setitem__("200", {"description": "ok"})
            or d["paths"]["/pets"]["post"]["responses"].pop("201")
        ),
        {("response-success-status-removed", "breaking"), ("response-success-status-added", "info")},
    ),
    "error status removed": (
        lambda d: d["paths"]["/pets"]["get"]["responses"].pop("404"),
        {("response-non-success-status-removed", "info")},
    ),
    # oasdiff: security is the deployer's to change; clients are told, not broken.
    "security added": (
        lambda d: d["paths"]["/pets"]["get"].__setitem__("security", [{"apiKey": []}]),
        {("api-security-added", "info")},
    ),
    "operation deprecated": (
        lambda d: d["paths"]["/pets"]["get"].__setitem__("deprecated", True),
        {("endpoint-deprecated", "info")},
    ),
}

FIELDS = {"id", "kind", "level", "breaking", "method", "path", "message", "old_pointer", "new_pointer"}


@pytest.mark.parametrize("flavour", ["swagger-2.0", "openapi-3.0"])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_each_kind_of_change_is_classified(flavour: str, mutation: str) -> None:
    old = swagger2() if flavour == "swagger-2.0" else oas3()
    new = copy.deepcopy(old)
    change, expected = MUTATIONS[mutation]
    change(new)
    new["info"]["version"] = "2.0.0"  # announced: no unannounced flag here
    changes = diff(old, new)
    # Nothing else is reported but the version change.
    assert {(c["id"], c["level"]) for c in changes} == {*expected, ("version-changed", "info")}, changes
    assert all(set(c) == FIELDS for c in changes)
    assert all(c["breaking"] is (c["level"] == "breaking") and c["kind"] == c["id"] for c in changes)
    for c in changes:
        # Each says where it is written, in the document that has it.
        for document, pointer in ((old, c["old_pointer"]), (new, c["new_pointer"])):
            if pointer is not None:
                assert resolve_pointer(document, pointer) is not None, (c, pointer)
        assert c["old_pointer"] is not None or c["new_pointer"] is not None


def resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_identical_documents_have_no_changes() -> None:
    assert diff(oas3(), oas3()) == []
    assert diff(swagger2(), swagger2()) == []


def test_the_version_change_is_reported_and_is_not_breaking() -> None:
    new = oas3()
    new["info"]["version"] = "1.1.0"
    assert diff(oas3(), new) == [
        {
            "id": "version-changed",
            "kind": "version-changed",
            "level": "info",
            "method": None,
            "path": None,
            "breaking": False,
            "message": "info.version changed from 1.0.0 to 1.1.0",
            "old_pointer": "/info/version",
            "new_pointer": "/info/version",
        }
    ]


def test_a_breaking_change_without_a_new_major_version_is_flagged_as_unannounced() -> None:
    new = oas3()
    new["paths"].pop("/pets/{petId}")
    new["info"]["version"] = "1.1.0"
    changes = diff(oas3(), new)
    assert changes[0]["kind"] == "unannounced-breaking-change" and changes[0]["breaking"]
    new["info"]["version"] = "2.0.0"
    assert "unannounced-breaking-change" not in {c["kind"] for c in diff(oas3(), new)}


def test_renamed_path_parameters_are_the_same_endpoint() -> None:
    new = oas3()
    item = new["paths"].pop("/pets/{petId}")
    item["get"]["parameters"][0]["name"] = "id"
    new["paths"]["/pets/{id}"] = item
    assert [c["id"] for c in diff(oas3(), new)] == []


def test_recursive_schemas_end() -> None:
    old, new = oas3(), oas3()
    # Pet.parent -> Pet -> ...: a change deep in the recursion is still found once.
    schemas(new)["Pet"]["properties"]["status"]["enum"].append("lost")
    changes = diff(old, new)
    found = [c for c in changes if c["kind"] == "response-property-enum-value-added"]
    assert found and len(found) <= 4  # once per response that returns a Pet, not forever


def test_mutually_recursive_and_self_referencing_refs_do_not_loop() -> None:
    old = oas3()
    schemas(old)["A"] = {"$ref": "#/components/schemas/B"}
    schemas(old)["B"] = {"$ref": "#/components/schemas/A"}
    schemas(old)["Pet"]["properties"]["loop"] = {"$ref": "#/components/schemas/A"}
    new = copy.deepcopy(old)
    new["info"]["version"] = "1.0.1"
    assert [c["kind"] for c in diff(old, new)] == ["version-changed"]


def test_a_real_document_against_a_modified_copy() -> None:
    old = json.loads((REAL_SPECS / "collegefootballdata.com.json").read_text())
    new = copy.deepcopy(old)
    first_path = sorted(new["paths"])[0]
    removed = new["paths"].pop(first_path)
    get_games = new["paths"]["/games"]["get"]
    get_games["parameters"].append(
        {"name": "season", "in": "query", "required": True, "schema": {"type": "integer"}}
    )
    changes = diff(old, new)
    kinds = {(c["kind"], c["path"]) for c in changes}
    assert ("api-path-removed-without-deprecation", first_path) in kinds
    assert ("new-required-request-parameter", "/games") in kinds
    assert changes[0]["kind"] == "unannounced-breaking-change"
    assert len(removed) >= 1
    assert diff(old, copy.deepcopy(old)) == []


def test_a_shared_schema_changed_is_reported_for_each_operation_that_uses_it() -> None:
    old = oas3()
    new = copy.deepcopy(old)
    new["info"]["version"] = "2.0.0"
    schemas(new)["Pet"]["properties"]["id"]["type"] = "string"
    found = {(c["method"], c["path"]) for c in diff(old, new) if c["id"] == "response-property-type-changed"}
    # Every operation answering with a Pet, each once; schemas nobody changed are not walked.
    users = {
        (method.upper(), path)
        for path, item in old["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "Pet" in json.dumps(op.get("responses"))
    }
    assert found == users and len(users) >= 2
