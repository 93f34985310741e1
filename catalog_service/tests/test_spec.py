"""openapi/catalog.yaml is the contract: it must validate, and name every handler."""

from __future__ import annotations

import inspect
import re

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from catalog_service.api.routing import handler
from catalog_service.spec import spec_path

METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_service_spec_is_valid_openapi() -> None:
    document, _ = read_from_filename(str(spec_path()))
    validate(document)


def test_every_operation_resolves_to_a_coroutine_handler() -> None:
    document = yaml.safe_load(spec_path().read_text())
    seen = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operation_id = operation["operationId"]
            # Generated clients name their functions after these: short camelCase names.
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", operation_id), f"{method.upper()} {path}"
            assert inspect.iscoroutinefunction(handler(operation_id)), f"{method.upper()} {path}"
            seen += 1
    assert seen >= 6


def test_every_error_response_is_problem_json() -> None:
    document = yaml.safe_load(spec_path().read_text())
    for name, response in document["components"]["responses"].items():
        assert list(response["content"]) == ["application/problem+json"], name
