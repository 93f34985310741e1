"""Running a ruleset over one document, the way Spectral runs it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..pointers import parts as pointer_parts
from ..pointers import pointer
from . import functions, paths
from .document import Resolved, child
from .paths import Parts
from .ruleset import FUNCTIONS, NAMES, Rule, Ruleset

UNRECOGNIZED = (
    "The provided document does not match any of the registered formats "
    "[OpenAPI 2.0 (Swagger), OpenAPI 3.x, OpenAPI 3.0.x, OpenAPI 3.1.x]"
)
_PLACEHOLDER = re.compile(r"{{(error|property|value|path|description)}}")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    path: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "path": self.path, "message": self.message}


def formats_of(document: Any) -> frozenset[str]:
    if not isinstance(document, dict):
        return frozenset()
    openapi, swagger = document.get("openapi"), document.get("swagger")
    if isinstance(openapi, str) and re.match(r"3\.\d", openapi):
        minor = "oas3.1" if openapi.startswith("3.1") else "oas3.0" if openapi.startswith("3.0") else ""
        return frozenset({"oas3", minor} - {""})
    if swagger in ("2.0", 2.0):
        return frozenset({"oas2"})
    return frozenset()


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is functions.MISSING:
        return ""
    try:
        if isinstance(value, dict | list):
            return "object" if isinstance(value, dict) else "array"
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)[:200]


def _field(value: Any, field: str) -> tuple[Parts, Any]:
    """The value at the dotted ``field`` under ``value`` (MISSING if absent), and its path."""
    parts: list[str | int] = []
    for name in field.split("."):
        part = int(name) if isinstance(value, list) and name.isdigit() else name
        parts.append(part)
        value = child(value, part)
    return tuple(parts), value


def _targets(then_field: str | None, parts: Parts, value: Any) -> list[tuple[Parts, Any]]:
    if then_field is None:
        return [(parts, value)]
    if then_field == "@key":
        return [((*parts, key), key) for key in value] if isinstance(value, dict) else []
    if then_field.startswith("$"):
        return [((*parts, *inner), found) for inner, found, _ in paths.matches(then_field, value)]
    relative, found = _field(value, then_field)
    return [((*parts, *relative), found)]


class _Order:
    """Where a path is in the document, as the written order of its keys (the order
    Spectral reports in); each object's key positions are counted once."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.positions: dict[int, dict[str, int]] = {}

    def __call__(self, parts: Parts) -> tuple[int, ...]:
        order: list[int] = []
        node = self.document
        for part in parts:
            found = child(node, part)
            if found is functions.MISSING:
                break
            if isinstance(node, dict):
                positions = self.positions.get(id(node))
                if positions is None:
                    positions = self.positions[id(node)] = {key: i for i, key in enumerate(node)}
                order.append(positions[str(part)])
            else:
                order.append(int(part))
            node = found
        return tuple(order)


def lint(
    document: Any,
    ruleset: Ruleset,
    schema_errors: list[tuple[str, str]] | None = None,
    *,
    seconds: float = float("inf"),
) -> list[Finding]:
    """Every finding of ``ruleset`` on ``document``, in the order of the document.
    ``schema_errors`` are (pointer, message) of the document against the OpenAPI
    schema, for the ``oasDocumentSchema`` function (the caller has them already).
    OutOfTime when it takes longer than ``seconds``."""
    formats = formats_of(document)
    resolved = Resolved(document)
    found: dict[tuple[str, str, str], tuple[tuple[int, ...], Finding]] = {}
    order = _Order(document)

    def report(rule: Rule, message: str, place: Parts) -> None:
        key = (rule.code, pointer(place), message)
        if key not in found:
            finding = Finding(rule.code, NAMES[rule.severity], key[1], message)
            found[key] = (order(place), finding)

    if not formats:
        report(_UNRECOGNIZED_RULE, UNRECOGNIZED, ())
    for ref_at, ref in resolved.broken:
        report(_INVALID_REF_RULE, f"'{ref}' does not exist", ref_at)

    with paths.shared_descent(seconds):
        for rule in ruleset.rules:
            _apply(rule, formats, resolved, document, schema_errors, report)
    return [finding for _, finding in sorted(found.values(), key=lambda item: (item[0], item[1].rule))]


def _apply(
    rule: Rule,
    formats: frozenset[str],
    resolved: Resolved,
    document: Any,
    schema_errors: list[tuple[str, str]] | None,
    report: Callable[[Rule, str, Parts], None],
) -> None:
    if rule.formats is not None and not rule.formats & formats:
        return
    root = resolved.root if rule.resolved else document
    for given in rule.given:
        for parts, value, _is_key in paths.matches(given, root):
            paths.on_time()
            for then in rule.then:
                for target_parts, target in _targets(then.field, parts, value):
                    for error, relative in _run(then.function, target, then.options, schema_errors, document):
                        at = (*target_parts, *relative)
                        place = resolved.written(at) if rule.resolved else _existing(document, at)
                        last = at[-1] if at else ""
                        error = error.replace("{{place}}", f'"{last}" property' if at else "Object")
                        message = _message(rule, error, at, target)
                        report(rule, message, place)


def _message(rule: Rule, error: str, at: Parts, target: Any) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "error":
            return error
        if name == "property":
            return str(at[-1]) if at else ""
        if name == "value":
            return _shown(target)
        return "#" + pointer(at) if name == "path" else ""

    return _PLACEHOLDER.sub(value, rule.message or "{{error}}") or rule.code


def _existing(document: Any, parts: Parts) -> Parts:
    node, place = document, list[str | int]()
    for part in parts:
        node = child(node, part)
        if node is functions.MISSING:
            break
        place.append(part)
    return tuple(place)


def _run(
    name: str, value: Any, options: dict[str, Any], schema_errors: list[tuple[str, str]] | None, document: Any
) -> list[functions.Problem]:
    if name == "oasDocumentSchema":
        return [(message, pointer_parts(at)) for at, message in schema_errors or []]
    function = FUNCTIONS[name]
    try:
        return list(function(value, options))
    except functions.OptionsError:
        return []


_UNRECOGNIZED_RULE = Rule("unrecognized-format", 1, (), (), None, None, True)
_INVALID_REF_RULE = Rule("invalid-ref", 0, (), (), None, None, True)


# developer.overheid.nl's adrScore: eight groups of rules, each failed by one error.
SCORE_GROUPS = {
    "openapi3": ("openapi3",),
    "openapi-root-exists": ("openapi-root-exists",),
    "version-header": ("missing-version-header", "missing-header"),
    "include-major-version-in-uri": ("include-major-version-in-uri",),
    "paths-no-trailing-slash": ("paths-no-trailing-slash",),
    "info-contact-fields-exist": ("info-contact-fields-exist",),
    "http-methods": ("http-methods",),
    "semver": ("semver",),
}


def score(findings: list[Finding]) -> int:
    """The adrScore of developer.overheid.nl: the share of the eight rule groups with no
    error, in percent, rounded half up as JavaScript's Math.round rounds."""
    failing = {finding.rule.removeprefix("nlgov:") for finding in findings if finding.severity == "error"}
    failed = sum(1 for codes in SCORE_GROUPS.values() if failing & set(codes))
    return max(0, min(100, int((1 - failed / len(SCORE_GROUPS)) * 100 + 0.5)))
