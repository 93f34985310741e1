"""The rules of Spectral's ``spectral:oas`` set that a ruleset can extend and switch
on by name, written here in the ruleset format (our own wording of what each checks),
and the OpenAPI-aware functions the simple core functions cannot express."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema

from ..domain import HTTP_METHODS
from ..patterns import bounded
from .functions import Problem, describe_schema_error
from .paths import on_time

OAS3 = ["oas3"]

# name -> rule, as a ruleset would write it; "recommended" as spectral:oas has it.
RULES: dict[str, dict[str, Any]] = {
    "oas3-schema": {
        "description": "The document must be valid OpenAPI 3.x.",
        "message": "{{error}}",
        "severity": "error",
        "formats": OAS3,
        "resolved": False,
        "given": "$",
        "then": {"function": "oasDocumentSchema"},
    },
    "operation-operationId-unique": {
        "message": 'Every operation must have unique "operationId".',
        "severity": "error",
        "given": "$",
        "resolved": False,
        "then": {"function": "oasOpIdUnique"},
    },
    "path-params": {
        "message": "{{error}}",
        "severity": "error",
        "given": "$",
        "then": {"function": "oasPathParam"},
    },
    "openapi-tags-uniqueness": {
        "message": "{{error}}",
        "severity": "error",
        "given": "$.tags",
        "then": {"function": "oasTagsUnique"},
    },
    "oas3-valid-media-example": {
        "message": "{{error}}",
        "severity": "error",
        "formats": OAS3,
        "given": "$",
        "then": {"function": "oasMediaExample"},
    },
    "oas3-valid-schema-example": {
        "message": "{{error}}",
        "severity": "error",
        "formats": OAS3,
        "given": "$",
        "then": {"function": "oasSchemaExample"},
    },
    "oas3-server-variables": {
        "message": "{{error}}",
        "severity": "error",
        "formats": OAS3,
        "given": ["$.servers[*]", "$.paths[*].servers[*]", "$.paths[*][*].servers[*]"],
        "then": {"function": "oasServerVariables"},
    },
    "oas3-api-servers": {
        "message": 'OpenAPI "servers" must be present and non-empty array.',
        "severity": "warn",
        "formats": OAS3,
        "given": "$",
        "then": {
            "field": "servers",
            "function": "schema",
            "functionOptions": {"schema": {"type": "array", "minItems": 1}},
        },
    },
    "path-keys-no-trailing-slash": {
        "message": "Path must not end with slash.",
        "severity": "warn",
        "given": "$.paths",
        "then": {"field": "@key", "function": "pattern", "functionOptions": {"notMatch": ".+\\/$"}},
    },
    "path-not-include-query": {
        "message": "Path must not include query string.",
        "severity": "warn",
        "given": "$.paths",
        "then": {"field": "@key", "function": "pattern", "functionOptions": {"notMatch": "\\?"}},
    },
    "info-contact": {
        "message": 'Info object must have "contact" object.',
        "severity": "warn",
        "given": "$",
        "then": {"field": "info.contact", "function": "truthy"},
    },
    "info-description": {
        "message": 'Info "description" must be present and non-empty string.',
        "severity": "warn",
        "given": "$",
        "then": {"field": "info.description", "function": "truthy"},
    },
    "info-license": {
        "message": 'Info object must have "license" object.',
        "severity": "warn",
        "recommended": False,
        "given": "$",
        "then": {"field": "info.license", "function": "truthy"},
    },
    "contact-properties": {
        "message": 'Contact object must have "name", "url" and "email".',
        "severity": "warn",
        "recommended": False,
        "given": "$.info.contact",
        "then": [
            {"field": "name", "function": "truthy"},
            {"field": "url", "function": "truthy"},
            {"field": "email", "function": "truthy"},
        ],
    },
    "operation-description": {
        "message": 'Operation "description" must be present and non-empty string.',
        "severity": "warn",
        "given": "$.paths[*][get,put,post,delete,options,head,patch,trace]",
        "then": {"field": "description", "function": "truthy"},
    },
    "operation-operationId": {
        "message": 'Operation must have "operationId".',
        "severity": "warn",
        "given": "$.paths[*][get,put,post,delete,options,head,patch,trace]",
        "then": {"field": "operationId", "function": "truthy"},
    },
    "operation-tags": {
        "message": 'Operation must have non-empty "tags" array.',
        "severity": "warn",
        "given": "$.paths[*][get,put,post,delete,options,head,patch,trace]",
        "then": {
            "field": "tags",
            "function": "schema",
            "functionOptions": {"schema": {"type": "array", "minItems": 1}},
        },
    },
    "tag-description": {
        "message": 'Tag object must have "description".',
        "severity": "warn",
        "recommended": False,
        "given": "$.tags[*]",
        "then": {"field": "description", "function": "truthy"},
    },
}


def operations(document: Any) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(path, method, operation, path item) of every operation."""
    paths = document.get("paths") if isinstance(document, dict) else None
    for path, item in (paths or {}).items() if isinstance(paths, dict) else ():
        if isinstance(item, dict):
            for method in HTTP_METHODS:
                if isinstance(item.get(method), dict):
                    yield path, method, item[method], item


def op_id_unique(document: Any, options: dict[str, Any]) -> list[Problem]:
    seen: set[Any] = set()
    problems: list[Problem] = []
    for path, method, operation, _ in operations(document):
        if "operationId" in operation:
            if str(operation["operationId"]) in seen:
                problems.append(("", ("paths", path, method, "operationId")))
            seen.add(str(operation["operationId"]))
    return problems


_TEMPLATE = re.compile(r"{([^}]*)}")


def _path_parameters(
    parameters: Any, at: tuple[Any, ...]
) -> Iterator[tuple[str, dict[str, Any], tuple[Any, ...]]]:
    for i, parameter in enumerate(parameters if isinstance(parameters, list) else []):
        if (
            isinstance(parameter, dict)
            and parameter.get("in") == "path"
            and isinstance(parameter.get("name"), str)
        ):
            yield parameter["name"], parameter, (*at, "parameters", i)


def path_params(document: Any, options: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict):
        return problems
    shapes: dict[str, str] = {}
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        names = _TEMPLATE.findall(path)
        shape = _TEMPLATE.sub("{}", path)
        if shape in shapes:
            problems.append(
                (f'Paths "{shapes[shape]}" and "{path}" must not be equivalent.', ("paths", path))
            )
        shapes.setdefault(shape, path)
        for name in {name for name in names if names.count(name) > 1}:
            problems.append(
                (f'Path "{path}" must not use parameter "{{{name}}}" multiple times.', ("paths", path))
            )
        common = {name: (p, at) for name, p, at in _path_parameters(item.get("parameters"), ("paths", path))}
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            declared = dict(common)
            seen: set[str] = set()
            for name, parameter, at in _path_parameters(operation.get("parameters"), ("paths", path, method)):
                if name in seen:
                    problems.append((f'Path parameter "{name}" must not be defined multiple times.', at))
                seen.add(name)
                declared[name] = (parameter, at)
            for name, (parameter, at) in declared.items():
                if parameter.get("required") is not True:
                    problems.append(
                        (f'Path parameter "{name}" must have "required" property that is set to "true".', at)
                    )
                if name not in names:
                    problems.append((f'Parameter "{name}" must be used in path "{path}".', at))
            for name in dict.fromkeys(names):
                if name not in declared:
                    problems.append(
                        (
                            f'Operation must define parameter "{{{name}}}" as expected by path "{path}".',
                            ("paths", path, method),
                        )
                    )
    return problems


def tags_unique(tags: Any, options: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        name = tag.get("name") if isinstance(tag, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append((f'"tags" object must not contain duplicates: "{name}".', (i, "name")))
            seen.add(name)
    return problems


def server_variables(server: Any, options: dict[str, Any]) -> list[Problem]:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        return []
    used = _TEMPLATE.findall(server["url"])
    variables: dict[str, Any] = server["variables"] if isinstance(server.get("variables"), dict) else {}
    problems: list[Problem] = []
    for name in dict.fromkeys(used):
        if name not in variables:
            problems.append((f'Server\'s "variables" object is missing a "{name}" variable.', ("url",)))
    for name, variable in variables.items():
        if name not in used:
            problems.append(
                (f'Server\'s "variables" object has unused defined "{name}" variable.', ("variables", name))
            )
        enum = variable.get("enum") if isinstance(variable, dict) else None
        if isinstance(enum, list) and "default" in variable and variable["default"] not in enum:
            problems.append(
                (
                    f'Server\'s "variables.{name}.default" property must be equal to one of the allowed values.',
                    ("variables", name, "default"),
                )
            )
    return problems


# -- examples ------------------------------------------------------------------------

_NOT_KEYWORDS = ("example", "examples", "xml", "externalDocs", "discriminator", "deprecated")


def _json_schema(node: Any, openapi30: bool, done: dict[int, Any]) -> Any:
    """An OpenAPI Schema Object as a JSON Schema (3.0's nullable and boolean exclusive
    bounds spelled out); internal references are already resolved, and a part shared by
    many schemas is converted once."""
    if not isinstance(node, dict | list):
        return node
    if id(node) in done:
        return done[id(node)]
    if isinstance(node, list):
        done[id(node)] = [_json_schema(item, openapi30, done) for item in node]
        return done[id(node)]
    out: dict[str, Any] = {}
    done[id(node)] = out
    for key, value in node.items():
        if key in (
            "properties",
            "patternProperties",
            "definitions",
            "$defs",
            "dependentSchemas",
        ) and isinstance(value, dict):
            out[key] = {name: _json_schema(item, openapi30, done) for name, item in value.items()}
        elif key not in _NOT_KEYWORDS:
            out[key] = _json_schema(value, openapi30, done)
    if openapi30:
        if node.get("nullable") is True and "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"]
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(node.get(flag), bool):
                out.pop(flag)
                if node[flag] and bound in out:
                    out[flag] = out.pop(bound)
        out.pop("nullable", None)
    return out


# The formats an example is checked against, as Spectral's validator (AJV's "fast"
# formats) checks them: by shape, a date-time's offset optional.
FORMATS = jsonschema.FormatChecker(formats=())
_SHAPES = {
    "date": r"\d\d\d\d-[0-1]\d-[0-3]\d",
    "time": r"(?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)?",
    "date-time": r"\d\d\d\d-[0-1]\d-[0-3]\d[t\s](?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)?",
    "uri": r"(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/)?[^\s]*",
    "email": r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
    "uuid": r"(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}",
    "ipv4": r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
}


def _shape(pattern: str) -> Any:
    compiled = re.compile(pattern, re.I)
    return lambda value: not isinstance(value, str) or compiled.fullmatch(value) is not None


for _name, _pattern in _SHAPES.items():
    FORMATS.checks(_name)(_shape(_pattern))


# A document's patterns are strangers' code: matched with a deadline.
_DRAFT4 = bounded(jsonschema.Draft4Validator)
_DRAFT2020 = bounded(jsonschema.Draft202012Validator)


def _example_problems(
    schema: Any, value: Any, at: tuple[Any, ...], openapi30: bool, done: dict[int, Any]
) -> list[Problem]:
    if not isinstance(schema, dict):
        return []
    on_time()
    try:
        validator_class = _DRAFT4 if openapi30 else _DRAFT2020
        validator = validator_class(_json_schema(schema, openapi30, done), format_checker=FORMATS)
        # Spectral stops at an example's first error.
        errors = [error for error, _ in zip(validator.iter_errors(value), range(1), strict=False)]
    except (
        jsonschema.SchemaError,
        jsonschema.exceptions.UnknownType,
        jsonschema.exceptions._WrappedReferencingError,
        RecursionError,
        TypeError,
        ValueError,
    ):
        return []
    return [(describe_schema_error(error), (*at, *error.absolute_path)) for error in errors]


def _media_like(document: Any) -> Iterator[tuple[dict[str, Any], tuple[Any, ...]]]:
    """Media types, parameters and headers (each with a schema) wherever they appear."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    seen: set[int] = set()
    while stack:
        node, at = stack.pop()
        if isinstance(node, dict):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if (
                "schema" in node
                and ("example" in node or "examples" in node)
                and isinstance(node["schema"], dict)
            ):
                yield node, at
            for key, value in node.items():
                if key not in ("example", "examples", "schema", "default", "enum"):
                    stack.append((value, (*at, key)))
        elif isinstance(node, list):
            stack.extend((value, (*at, i)) for i, value in enumerate(node))


def media_example(document: Any, options: dict[str, Any]) -> list[Problem]:
    openapi30 = str(document.get("openapi", "")).startswith("3.0")
    problems: list[Problem] = []
    done: dict[int, Any] = {}
    for node, at in _media_like(document):
        if "example" in node:
            problems += _example_problems(node["schema"], node["example"], (*at, "example"), openapi30, done)
        examples = node.get("examples")
        if isinstance(examples, dict):
            for name, example in examples.items():
                if isinstance(example, dict) and "value" in example:
                    problems += _example_problems(
                        node["schema"], example["value"], (*at, "examples", name, "value"), openapi30, done
                    )
    return problems


def _schemas(document: Any) -> Iterator[tuple[dict[str, Any], tuple[Any, ...]]]:
    """Every Schema Object under components.schemas and under a "schema" key."""
    stack: list[tuple[Any, tuple[Any, ...], bool]] = [(document, (), False)]
    seen: set[int] = set()
    while stack:
        node, at, is_schema = stack.pop()
        if isinstance(node, dict):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if is_schema:
                yield node, at
            for key, value in node.items():
                if key in ("example", "examples", "default", "enum", "const"):
                    continue
                child_is_schema = key == "schema" or (
                    is_schema
                    and key in ("items", "not", "additionalProperties", "contains", "if", "then", "else")
                )
                if (
                    is_schema
                    and key in ("properties", "patternProperties", "$defs")
                    and isinstance(value, dict)
                ):
                    stack.extend((v, (*at, key, k), True) for k, v in value.items())
                elif (
                    is_schema
                    and key in ("allOf", "anyOf", "oneOf", "prefixItems")
                    and isinstance(value, list)
                ):
                    stack.extend((v, (*at, key, i), True) for i, v in enumerate(value))
                elif at == ("components",) and key == "schemas" and isinstance(value, dict):
                    stack.extend((v, (*at, key, k), True) for k, v in value.items())
                else:
                    stack.append((value, (*at, key), child_is_schema))
        elif isinstance(node, list):
            stack.extend((value, (*at, i), False) for i, value in enumerate(node))


def schema_example(document: Any, options: dict[str, Any]) -> list[Problem]:
    openapi30 = str(document.get("openapi", "")).startswith("3.0")
    problems: list[Problem] = []
    done: dict[int, Any] = {}
    for node, at in _schemas(document):
        for key in ("example", "default"):
            if key in node:
                problems += _example_problems(node, node[key], (*at, key), openapi30, done)
    return problems


FUNCTIONS = {
    "oasOpIdUnique": op_id_unique,
    "oasPathParam": path_params,
    "oasTagsUnique": tags_unique,
    "oasServerVariables": server_variables,
    "oasMediaExample": media_example,
    "oasSchemaExample": schema_example,
}
