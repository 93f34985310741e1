"""What changed between two valid versions of an API, and what of it breaks clients.

Swagger 2.0 and OpenAPI 3.x are first brought to one shape (operations with their
parameters, request body, responses and security); local ``$ref``s are followed,
and a schema met again on the same walk is not walked twice, so recursive schemas
end. Whether a change breaks depends on its direction: a client *sends* requests
(anything newly demanded of it breaks) and *reads* responses (anything it can no
longer rely on, or newly has to understand, breaks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..domain import HTTP_METHODS

MAX_SCHEMA_DEPTH = 32
MAX_CHANGES = 1000


@dataclass
class Change:
    kind: str
    method: str | None
    path: str | None
    breaking: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "breaking": self.breaking,
            "message": self.message,
        }


@dataclass
class Operation:
    method: str
    path: str
    parameters: dict[tuple[str, str], dict[str, Any]]
    body: dict[str, Any] | None
    body_required: bool
    responses: dict[str, dict[str, Any] | None]
    security: list[dict[str, Any]] | None
    deprecated: bool


@dataclass
class _Resolver:
    document: dict[str, Any]

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, frozenset[str]]:
        """Follow local $refs; ``seen`` grows with each, so cycles stop."""
        hops = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and hops < 64:
            ref = node["$ref"]
            if not ref.startswith("#") or ref in seen:
                return {}, seen | {ref}
            seen = seen | {ref}
            node = self._pointer(ref)
            hops += 1
        return node, seen

    def _pointer(self, ref: str) -> Any:
        node: Any = self.document
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return {}
        return node if node is not None else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _template(path: str) -> str:
    """/pets/{petId} and /pets/{id} are the same endpoint."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _media_schema(content: Any) -> dict[str, Any] | None:
    if not isinstance(content, dict) or not content:
        return None
    for media_type, item in content.items():
        if "json" in media_type and isinstance(item, dict):
            return item.get("schema") or {}
    first = next(iter(content.values()))
    return (first or {}).get("schema") or {} if isinstance(first, dict) else None


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], Operation]:
    resolver = _Resolver(document)
    swagger2 = "swagger" in document
    found: dict[tuple[str, str], Operation] = {}
    paths = _mapping(document.get("paths"))
    global_security = document.get("security")
    for path, raw_item in paths.items():
        item, _ = resolver.resolve(raw_item)
        if not isinstance(item, dict):
            continue
        shared = _sequence(item.get("parameters"))
        for method in HTTP_METHODS:
            raw = item.get(method)
            if not isinstance(raw, dict):
                continue
            parameters: dict[tuple[str, str], dict[str, Any]] = {}
            body: dict[str, Any] | None = None
            body_required = False
            for raw_param in [*shared, *(raw.get("parameters") or [])]:
                param, _ = resolver.resolve(raw_param)
                if not isinstance(param, dict) or "name" not in param:
                    continue
                if param.get("in") == "body":
                    body = param.get("schema") or {}
                    body_required = bool(param.get("required"))
                    continue
                parameters[(str(param.get("in")), str(param["name"]))] = param
            if not swagger2 and raw.get("requestBody") is not None:
                request_body, _ = resolver.resolve(raw["requestBody"])
                if isinstance(request_body, dict):
                    body = _media_schema(request_body.get("content")) or {}
                    body_required = bool(request_body.get("required"))
            responses: dict[str, dict[str, Any] | None] = {}
            for status, raw_response in (raw.get("responses") or {}).items():
                response, _ = resolver.resolve(raw_response)
                if not isinstance(response, dict):
                    continue
                schema = response.get("schema") if swagger2 else _media_schema(response.get("content"))
                responses[str(status)] = schema
            security = raw.get("security", global_security)
            found[(method.upper(), _template(str(path)))] = Operation(
                method=method.upper(),
                path=str(path),
                parameters=parameters,
                body=body,
                body_required=body_required,
                responses=responses,
                security=security if isinstance(security, list) else None,
                deprecated=raw.get("deprecated") is True,
            )
    return found


@dataclass
class _Differ:
    old_doc: dict[str, Any]
    new_doc: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.old = _Resolver(self.old_doc)
        self.new = _Resolver(self.new_doc)

    def add(
        self, kind: str, op: Operation | None, breaking: bool, message: str, *, path: str | None = None
    ) -> None:
        if len(self.changes) < MAX_CHANGES:
            self.changes.append(
                Change(kind, op.method if op else None, op.path if op else path, breaking, message)
            )

    # -- operations -----------------------------------------------------------------

    def run(self) -> list[Change]:
        old_ops, new_ops = _operations(self.old_doc), _operations(self.new_doc)
        old_paths = {key[1] for key in old_ops}
        new_paths = {key[1] for key in new_ops}
        for template in sorted(old_paths - new_paths):
            shown = next(op.path for key, op in old_ops.items() if key[1] == template)
            self.add(
                "path-removed", None, True, f"path {shown} was removed with all its operations", path=shown
            )
        for key in sorted(old_ops.keys() - new_ops.keys()):
            if key[1] in new_paths:
                op = old_ops[key]
                self.add("operation-removed", op, True, f"{op.method} {op.path} was removed")
        for key in sorted(new_ops.keys() - old_ops.keys()):
            op = new_ops[key]
            self.add("operation-added", op, False, f"{op.method} {op.path} was added")
        for key in sorted(old_ops.keys() & new_ops.keys()):
            self.operation(old_ops[key], new_ops[key])
        return self.changes

    def operation(self, old: Operation, new: Operation) -> None:
        if new.deprecated and not old.deprecated:
            self.add("operation-deprecated", new, False, f"{new.method} {new.path} is now deprecated")
        for key in sorted(old.parameters.keys() - new.parameters.keys()):
            self.add("parameter-removed", new, True, f"{key[0]} parameter '{key[1]}' was removed")
        for key in sorted(new.parameters.keys() - old.parameters.keys()):
            required = bool(new.parameters[key].get("required"))
            self.add(
                "parameter-added",
                new,
                required,
                f"{'required' if required else 'optional'} {key[0]} parameter '{key[1]}' was added",
            )
        for key in sorted(old.parameters.keys() & new.parameters.keys()):
            old_param, new_param = old.parameters[key], new.parameters[key]
            if new_param.get("required") and not old_param.get("required"):
                self.add(
                    "parameter-made-required", new, True, f"{key[0]} parameter '{key[1]}' is now required"
                )
            self.schema(
                self._param_schema(old_param),
                self._param_schema(new_param),
                new,
                f"{key[0]} parameter '{key[1]}'",
                "request",
            )
        self.request_body(old, new)
        self.responses(old, new)
        self.security(old, new)

    @staticmethod
    def _param_schema(param: dict[str, Any]) -> dict[str, Any]:
        # OpenAPI 3 parameters carry a schema; Swagger 2.0 ones are their own schema.
        schema = param.get("schema")
        return (
            schema
            if isinstance(schema, dict)
            else {k: v for k, v in param.items() if k in ("type", "enum", "items", "format")}
        )

    def request_body(self, old: Operation, new: Operation) -> None:
        if new.body is not None and new.body_required and (old.body is None or not old.body_required):
            kind = "request-body-added" if old.body is None else "request-body-made-required"
            self.add(kind, new, True, "the request body is now required")
        if old.body is not None and new.body is not None:
            self.schema(old.body, new.body, new, "the request body", "request")

    def responses(self, old: Operation, new: Operation) -> None:
        for status in sorted(old.responses.keys() - new.responses.keys()):
            success = status.startswith("2")
            self.add("response-status-removed", new, success, f"response {status} is no longer documented")
        for status in sorted(old.responses.keys() & new.responses.keys()):
            old_schema, new_schema = old.responses[status], new.responses[status]
            if old_schema is not None and new_schema is not None:
                self.schema(old_schema, new_schema, new, f"the {status} response", "response")

    def security(self, old: Operation, new: Operation) -> None:
        def alternatives(requirements: list[dict[str, Any]] | None) -> set[frozenset[str]]:
            return {frozenset(r) for r in requirements or [] if isinstance(r, dict)}

        before, after = alternatives(old.security), alternatives(new.security)
        was_open = not before or frozenset() in before
        is_open = not after or frozenset() in after
        if was_open and not is_open:
            schemes = ", ".join(sorted({s for alt in after for s in alt}))
            self.add("security-added", new, True, f"the operation now requires authentication ({schemes})")
        elif not is_open and after - before and not before <= after:
            self.add("security-changed", new, True, "the operation's security requirements changed")

    # -- schemas --------------------------------------------------------------------

    def schema(
        self,
        old_raw: Any,
        new_raw: Any,
        op: Operation,
        where: str,
        direction: str,
        seen_old: frozenset[str] = frozenset(),
        seen_new: frozenset[str] = frozenset(),
        depth: int = 0,
    ) -> None:
        if depth > MAX_SCHEMA_DEPTH:
            return
        # A $ref already followed on this walk: the rest of it was compared there.
        if (
            isinstance(old_raw, dict)
            and old_raw.get("$ref") in seen_old
            and isinstance(new_raw, dict)
            and new_raw.get("$ref") in seen_new
        ):
            return
        old, seen_old = self.old.resolve(old_raw, seen_old)
        new, seen_new = self.new.resolve(new_raw, seen_new)
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        old, new = self._merged(old, self.old, seen_old), self._merged(new, self.new, seen_new)

        old_type, new_type = old.get("type"), new.get("type")
        if old_type is not None and new_type is not None and old_type != new_type:
            self.add("type-changed", op, True, f"{where}: type changed from {old_type} to {new_type}")
            return

        old_enum, new_enum = old.get("enum"), new.get("enum")
        if isinstance(old_enum, list) and isinstance(new_enum, list):
            removed = [v for v in old_enum if v not in new_enum]
            added = [v for v in new_enum if v not in old_enum]
            if direction == "response":
                if added:
                    self.add(
                        "response-enum-value-added", op, True, f"{where}: may now return {_values(added)}"
                    )
                if removed:
                    self.add(
                        "response-enum-value-removed",
                        op,
                        False,
                        f"{where}: no longer returns {_values(removed)}",
                    )
            else:
                if removed:
                    self.add(
                        "request-enum-value-removed",
                        op,
                        True,
                        f"{where}: no longer accepts {_values(removed)}",
                    )
                if added:
                    self.add(
                        "request-enum-value-added", op, False, f"{where}: now also accepts {_values(added)}"
                    )

        old_props = _mapping(old.get("properties"))
        new_props = _mapping(new.get("properties"))
        old_required = set(old.get("required") or []) if isinstance(old.get("required"), list) else set()
        new_required = set(new.get("required") or []) if isinstance(new.get("required"), list) else set()
        if direction == "response":
            for name in sorted(old_props.keys() - new_props.keys()):
                self.add("response-property-removed", op, True, f"{where}: property '{name}' was removed")
        else:
            for name in sorted(new_required - old_required):
                self.add("request-property-required", op, True, f"{where}: property '{name}' is now required")
        for name in sorted(old_props.keys() & new_props.keys()):
            self.schema(
                old_props[name],
                new_props[name],
                op,
                f"{where}: property '{name}'",
                direction,
                seen_old,
                seen_new,
                depth + 1,
            )
        if "items" in old and "items" in new:
            self.schema(
                old["items"], new["items"], op, f"{where}: items", direction, seen_old, seen_new, depth + 1
            )

    @staticmethod
    def _merged(schema: dict[str, Any], resolver: _Resolver, seen: frozenset[str]) -> dict[str, Any]:
        """allOf parts folded into one object schema (properties and required)."""
        parts = schema.get("allOf")
        if not isinstance(parts, list):
            return schema
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        properties = dict(merged.get("properties") or {})
        required = list(merged.get("required") or [])
        for part in parts:
            resolved, _ = resolver.resolve(part, seen)
            if isinstance(resolved, dict):
                properties.update(resolved.get("properties") or {})
                required += list(resolved.get("required") or [])
                merged.setdefault("type", resolved.get("type"))
        merged["properties"], merged["required"] = properties, required
        if merged.get("type") is None:
            merged.pop("type")
        return merged


def _values(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:10])
    return shown + (f" and {len(values) - 10} more" if len(values) > 10 else "")


def _major(version: Any) -> str | None:
    match = re.match(r"\s*v?(\d+)", str(version)) if version is not None else None
    return match.group(1) if match else None


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every change from ``old`` to ``new``, breaking ones marked; [] when nothing changed."""
    differ = _Differ(old, new)
    changes = differ.run()
    old_version = (old.get("info") or {}).get("version")
    new_version = (new.get("info") or {}).get("version")
    if old_version != new_version:
        changes.insert(
            0,
            Change(
                "version-changed",
                None,
                None,
                False,
                f"info.version changed from {old_version} to {new_version}",
            ),
        )
    if any(c.breaking for c in changes) and _major(old_version) == _major(new_version):
        changes.insert(
            0,
            Change(
                "unannounced-breaking-change",
                None,
                None,
                True,
                f"breaking changes while the major version stayed {_major(old_version) or old_version!r}",
            ),
        )
    return [c.as_dict() for c in changes]
