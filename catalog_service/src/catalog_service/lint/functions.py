"""Spectral's core functions: each takes the value a rule points at and its options,
and answers what is wrong with it, as (message, path relative to the value)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import jsonschema

from ..patterns import bounded
from .paths import Parts

Problem = tuple[str, Parts]
Function = Callable[[Any, dict[str, Any]], list[Problem]]

# A field the rule names that the value does not have (not the same as null).
MISSING = object()


class OptionsError(ValueError):
    """A rule's functionOptions the function cannot use."""


@lru_cache(maxsize=256)
def regex(pattern: str) -> re.Pattern[str]:
    """A JavaScript RegExp as Spectral reads it: ``/source/flags`` is a literal, any
    other string is the source with no flags. Searched for, not anchored."""
    flags = 0
    source = pattern
    literal = re.fullmatch(r"/(.+)/([a-z]*)", pattern, re.S)
    if literal:
        source = literal.group(1)
        for flag in literal.group(2):
            flags |= {"i": re.I, "m": re.M, "s": re.S}.get(flag, 0)
    # A JavaScript `$` (without the m flag) matches only at the very end.
    source = re.sub(r"(?<!\\)\$(?=\)*$)", r"\\Z", source)
    try:
        return re.compile(source, flags)
    except re.error as exc:
        raise OptionsError(f"cannot read the pattern {pattern!r}: {exc}") from exc


def truthy(value: Any, options: dict[str, Any]) -> list[Problem]:
    return (
        []
        if value is not MISSING and value not in (None, False, 0, "")
        else [("{{place}} must be truthy", ())]
    )


def falsy(value: Any, options: dict[str, Any]) -> list[Problem]:
    return [] if value is MISSING or value in (None, False, 0, "") else [("{{place}} must be falsy", ())]


def defined(value: Any, options: dict[str, Any]) -> list[Problem]:
    return [] if value is not MISSING else [("{{place}} must be defined", ())]


def undefined(value: Any, options: dict[str, Any]) -> list[Problem]:
    return [] if value is MISSING else [("{{place}} must be undefined", ())]


def pattern(value: Any, options: dict[str, Any]) -> list[Problem]:
    if not isinstance(value, str):
        return []
    problems: list[Problem] = []
    if "match" in options and not regex(str(options["match"])).search(value):
        problems.append((f'"{value}" must match the pattern "{options["match"]}"', ()))
    if "notMatch" in options and regex(str(options["notMatch"])).search(value):
        problems.append((f'"{value}" must not match the pattern "{options["notMatch"]}"', ()))
    return problems


def _members(options: dict[str, Any]) -> list[str]:
    names = options.get("properties")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise OptionsError('"properties" must be a list of names')
    return names


def or_(value: Any, options: dict[str, Any]) -> list[Problem]:
    names = _members(options)
    if not isinstance(value, dict) or any(name in value for name in names):
        return []
    return [(f"{{{{place}}}} must have at least one of these properties: {', '.join(names)}", ())]


def xor(value: Any, options: dict[str, Any]) -> list[Problem]:
    names = _members(options)
    if not isinstance(value, dict) or sum(name in value for name in names) == 1:
        return []
    return [(f"{{{{place}}}} must have exactly one of these properties: {', '.join(names)}", ())]


def enumeration(value: Any, options: dict[str, Any]) -> list[Problem]:
    values = options.get("values")
    if not isinstance(values, list):
        raise OptionsError('"values" must be a list')
    if value is MISSING or isinstance(value, dict | list) or value in values:
        return []
    return [(f'"{value}" must be equal to one of the allowed values: {", ".join(map(str, values))}', ())]


def length(value: Any, options: dict[str, Any]) -> list[Problem]:
    if isinstance(value, bool) or value is MISSING:
        return []
    size = (
        value
        if isinstance(value, int | float)
        else len(value)
        if isinstance(value, str | list | dict)
        else None
    )
    if size is None:
        return []
    if "min" in options and size < options["min"]:
        return [(f"{{{{place}}}} must be longer than {options['min']}", ())]
    if "max" in options and size > options["max"]:
        return [(f"{{{{place}}}} must be shorter than {options['max']}", ())]
    return []


_CASES = {
    "flat": "[a-z][a-z{d}]*",
    "camel": "[a-z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "pascal": "[A-Z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "kebab": "[a-z][a-z{d}]*(?:-[a-z{d}]+)*",
    "cobol": "[A-Z][A-Z{d}]*(?:-[A-Z{d}]+)*",
    "snake": "[a-z][a-z{d}]*(?:_[a-z{d}]+)*",
    "macro": "[A-Z][A-Z{d}]*(?:_[A-Z{d}]+)*",
}


@lru_cache(maxsize=64)
def _casing(kind: str, digits: bool, separator: str, leading: bool) -> re.Pattern[str]:
    if kind not in _CASES:
        raise OptionsError(f'"type" must be one of {", ".join(_CASES)}')
    word = _CASES[kind].replace("{d}", "0-9" if digits else "")
    if not separator:
        return re.compile(word)
    sep = re.escape(separator)
    return re.compile(f"{sep + '?' if leading else ''}(?:{word})(?:{sep}(?:{word}))*")


def casing(value: Any, options: dict[str, Any]) -> list[Problem]:
    if not isinstance(value, str) or not value:
        return []
    kind = str(options.get("type"))
    separator = options.get("separator") or {}
    shape = _casing(
        kind,
        not options.get("disallowDigits"),
        str(separator.get("char") or ""),
        bool(separator.get("allowLeading")),
    )
    return [] if shape.fullmatch(value) else [(f"{{{{place}}}} must be {kind} case", ())]


# AJV's wording (as Spectral prints it) for each JSON Schema keyword: {v} is the keyword's value.
_WORDS = {
    "minLength": "must not have fewer than {v} characters",
    "maxLength": "must not have more than {v} characters",
    "minItems": "must not have fewer than {v} items",
    "maxItems": "must not have more than {v} items",
    "minProperties": "must not have fewer than {v} properties",
    "maxProperties": "must not have more than {v} properties",
    "minimum": "must be >= {v}",
    "maximum": "must be <= {v}",
    "exclusiveMinimum": "must be > {v}",
    "exclusiveMaximum": "must be < {v}",
    "multipleOf": "must be multiple of {v}",
    "pattern": 'must match pattern "{v}"',
    "format": 'must match format "{v}"',
    "const": "must be equal to constant",
    "uniqueItems": "must not have duplicate items",
    "not": "must not be valid",
}


def leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """An anyOf/oneOf that failed, as the errors of each of its branches (AJV reports
    them all, and Spectral each at its own place); any other error as itself."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        return [leaf for branch in error.context for leaf in leaves(branch)]
    return [error]


def describe_schema_error(error: jsonschema.ValidationError) -> str:
    """An error of the ``schema`` function worded as Spectral words it."""
    place = "{{place}}"
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = re.match(r"'(.*)' is a required property", error.message)
        return f'{place} must have required property "{missing.group(1) if missing else error.message}"'
    if validator == "type":
        return f"{place} type must be {','.join(value) if isinstance(value, list) else value}"
    if validator == "enum" and isinstance(value, list):
        allowed = ", ".join(json.dumps(item, ensure_ascii=False) for item in value)
        return f"{place} must be equal to one of the allowed values: {allowed}"
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = next((key for key in error.instance if key not in known), "")
        return f'Property "{extra}" is not expected to be here'
    if validator == "oneOf":
        return f"{place} must match exactly one schema in oneOf"
    if validator == "anyOf":
        return f"{place} must match a schema in anyOf"
    if isinstance(validator, str) and validator in _WORDS:
        return f"{place} {_WORDS[validator].format(v=value)}"
    return f"{place} {error.message}"


@lru_cache(maxsize=128)
def _validator(schema_json: str, dialect: str) -> Any:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise OptionsError(f"the schema is not a JSON Schema: {exc.message}") from exc
    # Matched against documents' strings: with a deadline, whatever the ruleset says.
    return bounded(cls)(schema)


def schema(value: Any, options: dict[str, Any]) -> list[Problem]:
    if not isinstance(options.get("schema"), dict | bool):
        raise OptionsError('"schema" must be a JSON Schema')
    validator = _validator(json.dumps(options["schema"], sort_keys=True), str(options.get("dialect", "auto")))
    if value is MISSING:
        return [("{{place}} must exist", ())]
    problems: list[Problem] = []
    for error in validator.iter_errors(value):
        for leaf in leaves(error):
            problems.append((describe_schema_error(leaf), tuple(leaf.absolute_path)))
    return problems


CORE: dict[str, Function] = {
    "truthy": truthy,
    "falsy": falsy,
    "defined": defined,
    "undefined": undefined,
    "pattern": pattern,
    "or": or_,
    "xor": xor,
    "enumeration": enumeration,
    "length": length,
    "casing": casing,
    "schema": schema,
}
