"""Reads whose query string is plainly valid, and calls whose path and token plainly
are, answered without connexion's machinery.

connexion parses and validates every parameter of every request with jsonschema,
which costs a catalog page more than the page itself. The two reads people page
and search with (GET /api/catalog, GET /api/operations) are read from the spec at
start-up into plain checks: each query parameter's type, bounds, length, pattern
and enum, and its default. A query that passes every check goes straight to the
handler with the values connexion would have passed; anything else (an unknown or
repeated parameter, a value out of bounds, a schema keyword these checks do not
know) goes the long way, through connexion, which answers what is wrong with it.
The checks are never looser than the spec: at worst a valid request takes the long
way.

Calls (POST /api/projects/{name}/refresh) are read the same way: a path whose
parameters pass their checks, no query and no body, and a bearer token the spec's
x-bearerInfoFunc knows. Anything else (no token, an unknown one, a query) goes
through connexion, which answers it. The handler's result becomes a response as
connexion makes it (its own ``get_response``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from connexion.utils import get_function_from_name, is_json_mimetype
from multidict import CIMultiDictProxy

from .. import pointers
from .validation import whole_value

# operationIds read this way: those whose answers response_cache keeps.
OPERATIONS = ("listCatalog", "searchOperations")
# operationIds called this way: a refresh is what a team's deploy pipeline calls, one
# per API, and connexion's decorators were over a third of its cost.
CALLS = ("refreshProject",)
_BEARER = "Bearer "
# Schema keywords the checks know, by type; a parameter with any other takes the long way.
_ANNOTATIONS = {"type", "default", "description", "example"}
_KNOWN = {
    "integer": _ANNOTATIONS | {"minimum", "maximum"},
    "string": _ANNOTATIONS | {"minLength", "maxLength", "pattern", "enum"},
}
_KNOWN_PARAMETER = {"name", "in", "required", "schema", "description", "example"}
# A whole number as a client writes it; connexion also takes "+1" or " 1", which take the long way.
_INTEGER = re.compile(r"(?:0|-?[1-9][0-9]{0,17})")


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # "integer" or "string"
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    enum: frozenset[str] | None = None

    def value(self, text: str) -> Any:
        """The value as the handler takes it, or None when it is not plainly valid."""
        if self.kind == "integer":
            if not _INTEGER.fullmatch(text):
                return None
            number = int(text)
            if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum
            ):
                return None
            return number
        if (self.min_length is not None and len(text) < self.min_length) or (
            self.max_length is not None and len(text) > self.max_length
        ):
            return None
        if self.enum is not None and text not in self.enum:
            return None
        if self.pattern is not None and not self.pattern.search(text):
            return None
        return text


Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PlainRead:
    handler: Handler
    checks: Mapping[str, Check]
    defaults: Mapping[str, Any]

    def arguments(self, query: Mapping[str, str]) -> dict[str, Any] | None:
        """The handler's keyword arguments for ``query``, or None: take the long way."""
        if len(set(query)) != len(query):
            return None  # a parameter given twice
        arguments = dict(self.defaults)
        for name, text in query.items():
            check = self.checks.get(name)
            value = check.value(text) if check is not None else None
            if value is None:
                return None
            arguments[name] = value
        return arguments


def _check(name: str, schema: dict[str, Any]) -> Check | None:
    known = _KNOWN.get(schema.get("type", ""))
    if known is None or not set(schema) <= known:
        return None
    enum = schema.get("enum")
    return Check(
        name=name,
        kind=schema["type"],
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        min_length=schema.get("minLength"),
        max_length=schema.get("maxLength"),
        pattern=whole_value(schema["pattern"]) if "pattern" in schema else None,
        enum=frozenset(map(str, enum)) if enum is not None else None,
    )


def _deref(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = pointers.resolve(spec, node["$ref"].removeprefix("#"))
    return node


def plain_read(spec: dict[str, Any], operation: dict[str, Any], handler: Handler) -> PlainRead | None:
    """The plain checks of one GET operation, or None when any parameter needs connexion."""
    checks: dict[str, Check] = {}
    defaults: dict[str, Any] = {}
    for parameter in (_deref(spec, p) for p in operation.get("parameters", [])):
        if parameter["in"] == "header":
            continue  # If-None-Match: checked by the middleware (middlewares.cached_reads)
        if parameter["in"] != "query" or not set(parameter) <= _KNOWN_PARAMETER or parameter.get("required"):
            return None
        schema = _deref(spec, parameter.get("schema", {}))
        check = _check(parameter["name"], schema)
        if check is None:
            return None
        checks[check.name] = check
        if "default" in schema:
            defaults[check.name] = schema["default"]
    return PlainRead(handler, checks, defaults)


def plain_reads(
    spec: dict[str, Any], base_path: str, handler: Callable[[str], Handler]
) -> dict[str, PlainRead]:
    """URL path -> its plain checks, for the operations in OPERATIONS (``handler``:
    operationId -> its handler, as connexion resolves it)."""
    reads = {}
    for path, item in spec["paths"].items():
        operation = item.get("get")
        if operation is None or operation.get("operationId") not in OPERATIONS or item.get("parameters"):
            continue
        read = plain_read(spec, operation, handler(operation["operationId"]))
        if read is not None:
            reads[base_path + path] = read
    return reads


Identify = Callable[[str, web.Request], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class PlainCall:
    handler: Handler
    checks: Mapping[str, Check]  # the path's parameters
    identify: Identify  # the spec's x-bearerInfoFunc
    mimetype: str  # what connexion serialises the handler's result as

    def arguments(self, path: Mapping[str, str]) -> dict[str, Any] | None:
        """The handler's keyword arguments from the matched path, or None: the long way."""
        arguments = {}
        for name, check in self.checks.items():
            text = path.get(name)
            value = check.value(text) if text is not None else None
            if value is None:
                return None
            arguments[name] = value
        return arguments


def bearer_token(headers: CIMultiDictProxy[str]) -> str | None:
    """The token of one plain ``Authorization: Bearer <token>``, or None: the long way."""
    values = headers.getall("Authorization", [])
    if len(values) != 1 or not values[0].startswith(_BEARER):
        return None
    token = values[0][len(_BEARER) :]
    return token if token and len(token.split()) == 1 and token.strip() == token else None


def _mimetype(spec: dict[str, Any], operation: dict[str, Any]) -> str | None:
    """connexion's choice for an operation's answers: the one type all its responses
    have, application/json when they are JSON of several types."""
    produces = {
        content
        for response in operation.get("responses", {}).values()
        for content in _deref(spec, response).get("content", {})
    }
    if not produces or not all(is_json_mimetype(content) for content in produces):
        return None
    return produces.pop() if len(produces) == 1 else "application/json"


def plain_call(
    spec: dict[str, Any], item: dict[str, Any], operation: dict[str, Any], handler: Handler
) -> PlainCall | None:
    """The plain checks of one call, or None when anything about it needs connexion."""
    schemes = spec.get("components", {}).get("securitySchemes", {})
    security = operation.get("security", spec.get("security"))
    if not security or len(security) != 1 or len(security[0]) != 1 or "requestBody" in operation:
        return None
    (scheme_name,) = security[0]
    scheme = schemes.get(scheme_name, {})
    if (scheme.get("type"), str(scheme.get("scheme", "")).lower()) != ("http", "bearer"):
        return None
    identify = scheme.get("x-bearerInfoFunc")
    mimetype = _mimetype(spec, operation)
    if identify is None or mimetype is None:
        return None
    checks: dict[str, Check] = {}
    parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
    for parameter in (_deref(spec, p) for p in parameters):
        if parameter["in"] != "path" or not set(parameter) <= _KNOWN_PARAMETER:
            return None
        check = _check(parameter["name"], _deref(spec, parameter.get("schema", {})))
        if check is None:
            return None
        checks[check.name] = check
    return PlainCall(handler, checks, get_function_from_name(identify), mimetype)


def plain_calls(
    spec: dict[str, Any], base_path: str, handler: Callable[[str], Handler]
) -> dict[tuple[str, str], PlainCall]:
    """(method, route as aiohttp writes it) -> its plain checks, for the operations in CALLS."""
    calls = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or operation.get("operationId") not in CALLS:
                continue
            call = plain_call(spec, item, operation, handler(operation["operationId"]))
            if call is not None:
                calls[(method.upper(), base_path + path)] = call
    return calls
