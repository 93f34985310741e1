"""Comparing two schemas in one direction: a client *sends* requests (anything newly
refused breaks it) and *reads* responses (anything it may now be sent that it could
not be before breaks it). Every JSON Schema keyword OpenAPI 3.0 and 3.1 use: types and
null, values, bounds, patterns, composition, properties (readOnly and writeOnly by
direction), and the 2020-12 keywords."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .document import Document, Node, Operation, sunset

MAX_SCHEMA_DEPTH = 32

# How a schema comparison reports a finding: the id's suffix, and the sentence.
Add = Callable[[str, str], None]


def _types(schema: dict[str, Any]) -> set[str]:
    """The schema's types without null: its ``type``, or the types its oneOf or anyOf
    lists when each part is a bare type (a list of types written another way)."""
    value = schema.get("type")
    if isinstance(value, str):
        return {value} - {"null"}
    if isinstance(value, list):
        return {t for t in value if isinstance(t, str)} - {"null"}
    return _type_list(schema) or set()


def _type_list(schema: dict[str, Any]) -> set[str] | None:
    """The types of a oneOf/anyOf whose every part is ``{"type": ...}`` alone."""
    for keyword in ("oneOf", "anyOf"):
        parts = schema.get(keyword)
        if (
            isinstance(parts, list)
            and parts
            and all(
                isinstance(part, dict) and set(part) == {"type"} and isinstance(part["type"], str)
                for part in parts
            )
        ):
            return {part["type"] for part in parts} - {"null"}
    return None


def _nullable(schema: dict[str, Any]) -> bool:
    value = schema.get("type")
    if schema.get("nullable") is True:
        return True
    if isinstance(value, list) and "null" in value:
        return True
    return any(
        isinstance(s, dict) and s.get("type") == "null"
        for s in schema.get("oneOf") or schema.get("anyOf") or []
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Where:
    """Where a schema sits: the finding's id prefix and how a sentence names it."""

    direction: str  # request | response
    prefix: str  # request-parameter, request-body, request-property, response-body, ...
    name: str  # "the query parameter 'q'", "the request body", "request property 'a/b'"
    path: tuple[str, ...] = ()  # property names below the top
    # A header parameter (its properties have ids of their own).
    header: bool = False
    # Under a media type that is not JSON (XML, text, forms): loosely typed, where an
    # object and a string may be the same bytes.
    loose: bool = False

    def below(self, name: str) -> Where:
        names = (*self.path, name)
        shown = "/".join(names)
        top = self.name.split(": property '")[0]
        if self.prefix.startswith("request-parameter"):
            prefix = "request-header-property" if self.header else "request-parameter-property"
            return Where(self.direction, prefix, f"{top}: property '{shown}'", names, self.header, self.loose)
        if self.prefix.startswith("response-header"):
            return Where(
                self.direction, "response-header", f"{top}: property '{shown}'", names, loose=self.loose
            )
        kind = "request" if self.direction == "request" else "response"
        return Where(
            self.direction, f"{kind}-property", f"{kind} property '{shown}'", names, loose=self.loose
        )


class Schemas:
    """The schema half of the checker: what changed between two schemas, reported with
    ``add`` (given by the checker) on the documents ``old`` and ``new``."""

    old: Document
    new: Document
    # $refs whose values are the same in both documents, all the way down.
    unchanged: frozenset[str] = frozenset()
    # The schema pairs compared so far for the operation at hand.
    visited: set[tuple[str, str, str, str]]
    # Whether as many changes as are kept have been found (nothing more is looked for).
    full: bool = False

    # Reports a finding: the checker's own (rule, operation, sentence, old and new pointers).
    add: Callable[..., None]

    def schema(
        self,
        old_node: Node,
        new_node: Node,
        op: Operation,
        where: Where,
        depth: int,
    ) -> None:
        if depth > MAX_SCHEMA_DEPTH or self.full:
            return
        old_raw, new_raw = old_node.value, new_node.value
        if isinstance(old_raw, dict) and isinstance(new_raw, dict):
            ref = old_raw.get("$ref")
            # The same schema, unchanged, in both: nothing to find there.
            if ref is not None and ref == new_raw.get("$ref") and ref in self.unchanged:
                return
        old = self.old.resolve(old_node)
        new = self.new.resolve(new_node)
        if not isinstance(old.value, dict) or not isinstance(new.value, dict):
            return
        # A pair met again within one operation (a schema reached by two ways, or a
        # recursive one reaching itself) was compared the first time.
        visit = (old.pointer, new.pointer, where.direction, where.prefix)
        if visit in self.visited:
            return
        self.visited.add(visit)
        request = where.direction == "request"
        o, n = old.value, new.value
        p = where.prefix
        said = where.name

        def add(suffix: str, message: str) -> None:
            self.add(f"{p}-{suffix}", op, f"{said}: {message}", old.pointer, new.pointer)

        # -- types and null
        old_types, new_types = _types(o), _types(n)
        if old_types != new_types and (old_types or new_types):
            multi = len(old_types) > 1 or len(new_types) > 1
            shown = f"from {'/'.join(sorted(old_types)) or 'any'} to {'/'.join(sorted(new_types)) or 'any'}"
            if (
                where.loose
                and old_types
                and new_types
                and (old_types | new_types) <= {"object", "string", "array"}
            ):
                add("type-compatible", f"type changed {shown}, the same bytes in a loosely typed media type")
            elif p == "request-parameter-property" and old_types == {"string"}:
                add("type-specialized", f"type specialized {shown}")
            elif not old_types:
                add(
                    "type-changed" if request else "type-specialized", f"type set to {shown.split(' to ')[1]}"
                )
            elif not new_types:
                add("type-generalized", f"type {shown} (any type)")
            elif multi:
                if self._wider(new_types, old_types) or (
                    not self._wider(old_types, new_types) and not request
                ):
                    add("list-of-types-widened", f"types widened {shown}")
                else:
                    add("list-of-types-narrowed", f"types narrowed {shown}")
            elif self._wider(new_types, old_types):
                add("type-generalized", f"type generalized {shown}")
            elif self._wider(old_types, new_types):
                add("type-specialized", f"type specialized {shown}")
            else:
                add("type-changed", f"type changed {shown}")
        old_null, new_null = _nullable(o), _nullable(n)
        if new_null and not old_null:
            add("became-nullable", "may now be null")
        elif old_null and not new_null:
            add("became-not-nullable", "may no longer be null")
        if (
            o.get("format") != n.get("format")
            and o.get("format")
            and n.get("format")
            and old_types == new_types
        ):
            add("type-changed", f"format changed from {o.get('format')} to {n.get('format')}")

        # -- values
        self.values(o, n, add)
        # -- constraints
        self.constraints(o, n, add)
        # -- composition
        self.composition(old, new, op, where, depth, add)
        # -- objects
        self.properties(old, new, op, where, depth)
        # -- arrays and the 2020-12 keywords
        self.keywords(old, new, op, where, depth, add)

    @staticmethod
    def _wider(wide: set[str], narrow: set[str]) -> bool:
        """Whether every value of ``narrow``'s types is one of ``wide``'s."""
        grown = set(wide) | ({"integer"} if "number" in wide else set())
        return narrow <= grown and wide != narrow

    def values(self, o: dict[str, Any], n: dict[str, Any], add: Add) -> None:
        old_enum, new_enum = o.get("enum"), n.get("enum")
        if isinstance(new_enum, list) and not isinstance(old_enum, list):
            add("became-enum", f"now restricted to {shown(new_enum)}")
        elif isinstance(old_enum, list) and isinstance(new_enum, list):
            removed = [v for v in old_enum if v not in new_enum]
            added = [v for v in new_enum if v not in old_enum]
            if removed:
                add("enum-value-removed", f"{shown(removed)} removed from its values")
            if added:
                add("enum-value-added", f"{shown(added)} added to its values")
        old_ext, new_ext = o.get("x-extensible-enum"), n.get("x-extensible-enum")
        if isinstance(old_ext, list) and isinstance(new_ext, list):
            removed = [v for v in old_ext if v not in new_ext]
            if removed:
                add("x-extensible-enum-value-removed", f"{shown(removed)} removed from its extensible values")
        if "const" in n and "const" not in o:
            add("const-added", f"now restricted to the value {shown(n['const'])}")
        elif "const" in o and "const" not in n:
            add("const-removed", f"no longer restricted to the value {shown(o['const'])}")
        elif "const" in o and o["const"] != n["const"]:
            add("const-changed", f"its value changed from {shown(o['const'])} to {shown(n['const'])}")

    def constraints(self, o: dict[str, Any], n: dict[str, Any], add: Add) -> None:
        # (keyword, a greater value allows more)
        for keyword, rule, upper in (
            ("maximum", "max", True),
            ("minimum", "min", False),
            ("maxLength", "max-length", True),
            ("minLength", "min-length", False),
            ("maxItems", "max-items", True),
            ("minItems", "min-items", False),
            ("maxContains", "max-contains", True),
            ("minContains", "min-contains", False),
        ):
            before, after = _number(o.get(keyword)), _number(n.get(keyword))
            self._bound(add, keyword, rule, upper, before, after)
        # exclusive bounds: numbers in 3.1, flags beside maximum/minimum in 3.0
        for keyword, rule, upper in (
            ("exclusiveMaximum", "exclusive-max", True),
            ("exclusiveMinimum", "exclusive-min", False),
        ):
            before, after = o.get(keyword), n.get(keyword)
            if isinstance(before, bool) or isinstance(after, bool):
                if after is True and before is not True:
                    add(f"{rule}-{'decreased' if upper else 'increased'}", f"{keyword} set")
                elif before is True and after is not True:
                    add(f"{rule}-{'increased' if upper else 'decreased'}", f"{keyword} removed")
                continue
            self._bound(add, keyword, rule, upper, _number(before), _number(after))
        old_pattern, new_pattern = o.get("pattern"), n.get("pattern")
        if new_pattern and not old_pattern:
            add("pattern-added", f"the pattern {new_pattern} was added")
        elif old_pattern and not new_pattern:
            add("pattern-removed", f"the pattern {old_pattern} was removed")
        elif old_pattern and new_pattern and old_pattern != new_pattern:
            if new_pattern in (".*", "^.*$"):
                add("pattern-generalized", f"the pattern changed from {old_pattern} to {new_pattern}")
            else:
                add("pattern-changed", f"the pattern changed from {old_pattern} to {new_pattern}")
        for keyword, rule in (
            ("contentEncoding", "content-encoding"),
            ("contentMediaType", "content-media-type"),
        ):
            if o.get(keyword) != n.get(keyword) and (keyword in o or keyword in n):
                add(f"{rule}-changed", f"{keyword} changed from {o.get(keyword)} to {n.get(keyword)}")

    @staticmethod
    def _bound(
        add: Add, keyword: str, rule: str, upper: bool, before: float | None, after: float | None
    ) -> None:
        if before == after:
            return

        def text(value: float | None) -> str:
            return "none" if value is None else f"{value:g}"

        if before is None:
            add(f"{rule}-set", f"{keyword} set to {text(after)}")
        elif after is None:
            add(f"{rule}-unset" if not upper else f"{rule}-increased", f"{keyword} {text(before)} removed")
        elif (after > before) == upper:
            add(
                f"{rule}-increased" if upper else f"{rule}-decreased",
                f"{keyword} changed from {text(before)} to {text(after)}",
            )
        else:
            add(
                f"{rule}-decreased" if upper else f"{rule}-increased",
                f"{keyword} changed from {text(before)} to {text(after)}",
            )

    def composition(
        self,
        old: Node,
        new: Node,
        op: Operation,
        where: Where,
        depth: int,
        add: Add,
    ) -> None:
        type_lists = _type_list(old.value) is not None or _type_list(new.value) is not None
        for keyword, rule in (("allOf", "all-of"), ("anyOf", "any-of"), ("oneOf", "one-of")):
            if type_lists and keyword != "allOf":
                continue  # compared as lists of types
            old_parts, new_parts = old.value.get(keyword), new.value.get(keyword)
            old_parts = old_parts if isinstance(old_parts, list) else []
            new_parts = new_parts if isinstance(new_parts, list) else []
            if not old_parts and not new_parts:
                continue
            old_keys = [self._part_key(part) for part in old_parts]
            new_keys = [self._part_key(part) for part in new_parts]
            added = [i for i, key in enumerate(new_keys) if key not in old_keys]
            removed = [i for i, key in enumerate(old_keys) if key not in new_keys]
            if (
                keyword == "oneOf"
                and not old_parts
                and new_parts
                and ("properties" in old.value or "type" in old.value)
            ):
                add("wrapped-in-one-of", "now one of several schemas")
                continue
            for i in added:
                annotation = keyword == "allOf" and self._annotation_only(new_parts[i], self.new)
                add(
                    f"{rule}-added{'-annotation-only' if annotation else ''}",
                    f"{keyword} gained #{i} {self._part_name(new_parts[i])}",
                )
            for i in removed:
                annotation = keyword == "allOf" and self._annotation_only(old_parts[i], self.old)
                add(
                    f"{rule}-removed{'-annotation-only' if annotation else ''}",
                    f"{keyword} lost #{i} {self._part_name(old_parts[i])}",
                )
            for i, key in enumerate(old_keys):
                if key in new_keys:
                    j = new_keys.index(key)
                    self.schema(old.get(keyword).at(i), new.get(keyword).at(j), op, where, depth + 1)
        old_disc, new_disc = old.value.get("discriminator"), new.value.get("discriminator")
        if isinstance(new_disc, dict) and not isinstance(old_disc, dict):
            add("discriminator-added", "a discriminator was added")
        elif isinstance(old_disc, dict) and not isinstance(new_disc, dict):
            add("discriminator-removed", "the discriminator was removed")
        elif isinstance(old_disc, dict) and isinstance(new_disc, dict):
            if old_disc.get("propertyName") != new_disc.get("propertyName"):
                add("discriminator-property-name-changed", "the discriminator's property changed")
            old_map, new_map = old_disc.get("mapping") or {}, new_disc.get("mapping") or {}
            if isinstance(old_map, dict) and isinstance(new_map, dict):
                if set(old_map) - set(new_map):
                    add(
                        "discriminator-mapping-deleted",
                        f"discriminator values {shown(sorted(set(old_map) - set(new_map)))} removed",
                    )
                if set(new_map) - set(old_map):
                    add(
                        "discriminator-mapping-added",
                        f"discriminator values {shown(sorted(set(new_map) - set(old_map)))} added",
                    )

    @staticmethod
    def _part_key(part: Any) -> str:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            return str(part["$ref"]).rsplit("/", 1)[-1]
        if isinstance(part, dict) and isinstance(part.get("title"), str):
            return "title:" + str(part["title"])
        return json.dumps(part, sort_keys=True, default=str)

    @staticmethod
    def _part_name(part: Any) -> str:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            return str(part["$ref"]).rsplit("/", 1)[-1]
        return shown(part)

    @staticmethod
    def _annotation_only(part: Any, doc: Document) -> bool:
        node = doc.resolve(Node(part, ""))
        annotations = {
            "title",
            "description",
            "example",
            "examples",
            "deprecated",
            "readOnly",
            "writeOnly",
            "default",
            "$comment",
        }
        return isinstance(node.value, dict) and bool(node.value) and set(node.value) <= annotations

    def properties(
        self,
        old: Node,
        new: Node,
        op: Operation,
        where: Where,
        depth: int,
    ) -> None:
        request = where.direction == "request"
        old_props, old_required = self._object(old, self.old)
        new_props, new_required = self._object(new, self.new)
        hidden = "readOnly" if request else "writeOnly"

        def flag(node: Node, doc: Document, key: str) -> bool:
            resolved = doc.resolve(node)
            return isinstance(resolved.value, dict) and resolved.value.get(key) is True

        for name in sorted(old_props.keys() - new_props.keys()):
            child = where.below(name)
            if flag(old_props[name], self.old, hidden):
                continue
            if request:
                self.add("request-property-removed", op, f"{child.name} was removed", old_props[name].pointer)
            else:
                rule = (
                    "response-required-property-removed"
                    if name in old_required
                    else "response-optional-property-removed"
                )
                self.add(rule, op, f"{child.name} was removed", old_props[name].pointer)
        for name in sorted(new_props.keys() - old_props.keys()):
            child = where.below(name)
            if flag(new_props[name], self.new, hidden):
                continue
            if request:
                if name in new_required:
                    resolved = self.new.resolve(new_props[name])
                    default = isinstance(resolved.value, dict) and "default" in resolved.value
                    rule = (
                        "new-required-request-property-with-default"
                        if default
                        else "new-required-request-property"
                    )
                    self.add(rule, op, f"the required {child.name} was added", new=new_props[name].pointer)
                else:
                    self.add(
                        "new-optional-request-property",
                        op,
                        f"the optional {child.name} was added",
                        new=new_props[name].pointer,
                    )
            else:
                rule = (
                    "response-required-property-added"
                    if name in new_required
                    else "response-optional-property-added"
                )
                self.add(rule, op, f"{child.name} was added", new=new_props[name].pointer)
        for name in sorted(old_props.keys() & new_props.keys()):
            child = where.below(name)
            if flag(new_props[name], self.new, hidden) and flag(old_props[name], self.old, hidden):
                continue
            self.property_lifecycle(op, child, old_props[name], new_props[name])
            if request and name in new_required and name not in old_required:
                if not flag(new_props[name], self.new, hidden):
                    self.add(
                        "request-property-became-required",
                        op,
                        f"{child.name} became required",
                        old_props[name].pointer,
                        new_props[name].pointer,
                    )
            elif request and name in old_required and name not in new_required:
                self.add(
                    "request-property-became-optional",
                    op,
                    f"{child.name} became optional",
                    old_props[name].pointer,
                    new_props[name].pointer,
                )
            elif not request and name in old_required and name not in new_required:
                self.add(
                    "response-property-became-optional",
                    op,
                    f"{child.name} became optional",
                    old_props[name].pointer,
                    new_props[name].pointer,
                )
            elif not request and name in new_required and name not in old_required:
                self.add(
                    "response-property-became-required",
                    op,
                    f"{child.name} became required",
                    old_props[name].pointer,
                    new_props[name].pointer,
                )
            self.schema(old_props[name], new_props[name], op, child, depth + 1)
        old_additional, new_additional = (
            old.value.get("additionalProperties"),
            new.value.get("additionalProperties"),
        )
        if isinstance(old_additional, dict) and isinstance(new_additional, dict):
            self.schema(
                old.get("additionalProperties"),
                new.get("additionalProperties"),
                op,
                where.below("additionalProperties"),
                depth + 1,
            )

    def property_lifecycle(self, op: Operation, where: Where, old: Node, new: Node) -> None:
        old_value = self.old.resolve(old)
        new_value = self.new.resolve(new)
        if not (isinstance(old_value.value, dict) and isinstance(new_value.value, dict)):
            return
        kind = "request" if where.direction == "request" else "response"
        if new_value.value.get("deprecated") is True and old_value.value.get("deprecated") is not True:
            present, date = sunset(new_value.value)
            if present and date is None:
                self.add(
                    f"{kind}-property-deprecated-sunset-invalid",
                    op,
                    f"{where.name} was deprecated with an x-sunset date that cannot be read",
                    old.pointer,
                    new.pointer,
                )
            else:
                rule = f"{kind}-property-deprecated-with-sunset" if present else f"{kind}-property-deprecated"
                self.add(rule, op, f"{where.name} was deprecated", old.pointer, new.pointer)
        elif old_value.value.get("deprecated") is True and new_value.value.get("deprecated") is not True:
            self.add(
                f"{kind}-property-reactivated",
                op,
                f"{where.name} is no longer deprecated",
                old.pointer,
                new.pointer,
            )

    def _object(
        self, node: Node, doc: Document, seen: frozenset[str] = frozenset()
    ) -> tuple[dict[str, Node], set[str]]:
        """The schema's properties and required names, with those its allOf parts add
        (a part met again on the way is not read twice)."""
        props = node.get("properties")
        found = {str(name): props.get(name) for name in props.value} if isinstance(props.value, dict) else {}
        required = node.value.get("required")
        names = {str(r) for r in required} if isinstance(required, list) else set()
        parts = node.value.get("allOf")
        for i in range(len(parts) if isinstance(parts, list) else 0):
            part = doc.resolve(node.get("allOf").at(i))
            if isinstance(part.value, dict) and part.pointer not in seen:
                inner, inner_names = self._object(part, doc, seen | {node.pointer, part.pointer})
                for name, child in inner.items():
                    found.setdefault(name, child)
                names |= inner_names
        return found, names

    def keywords(
        self,
        old: Node,
        new: Node,
        op: Operation,
        where: Where,
        depth: int,
        add: Add,
    ) -> None:
        o, n = old.value, new.value
        for keyword in (
            "items",
            "contains",
            "not",
            "propertyNames",
            "unevaluatedItems",
            "unevaluatedProperties",
            "contentSchema",
            "if",
            "then",
            "else",
        ):
            if isinstance(o.get(keyword), dict) and isinstance(n.get(keyword), dict):
                below = where if keyword == "items" else where.below(keyword)
                self.schema(old.get(keyword), new.get(keyword), op, below, depth + 1)
        # Keywords whose presence narrows what is valid: added narrows, removed widens.
        for keyword, rule in (
            ("contains", "contains"),
            ("if", "if"),
            ("then", "then"),
            ("else", "else"),
            ("propertyNames", "property-names"),
            ("unevaluatedItems", "unevaluated-items"),
            ("unevaluatedProperties", "unevaluated-properties"),
            ("contentSchema", "content-schema"),
        ):
            if keyword in n and keyword not in o:
                add(f"{rule}-added", f"{keyword} was added")
            elif keyword in o and keyword not in n:
                add(f"{rule}-removed", f"{keyword} was removed")
        # Maps of keywords: an entry added narrows, one removed widens, one changed may do either.
        for keyword, rule in (
            ("dependentRequired", "dependent-required"),
            ("dependentSchemas", "dependent-schema"),
            ("patternProperties", "pattern-property"),
        ):
            before = o.get(keyword) if isinstance(o.get(keyword), dict) else {}
            after = n.get(keyword) if isinstance(n.get(keyword), dict) else {}
            if set(after) - set(before):
                add(f"{rule}-added", f"{keyword} {shown(sorted(set(after) - set(before)))} added")
            if set(before) - set(after):
                add(f"{rule}-removed", f"{keyword} {shown(sorted(set(before) - set(after)))} removed")
            changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
            if changed and keyword == "dependentRequired":
                add(f"{rule}-changed", f"{keyword} {shown(changed)} changed")
        # prefixItems: positions lost widen what is accepted, positions gained narrow it.
        old_prefix = o.get("prefixItems") if isinstance(o.get("prefixItems"), list) else []
        new_prefix = n.get("prefixItems") if isinstance(n.get("prefixItems"), list) else []
        if len(new_prefix) > len(old_prefix):
            add("prefix-items-added", f"prefixItems gained {len(new_prefix) - len(old_prefix)} position(s)")
        elif len(new_prefix) < len(old_prefix):
            add("prefix-items-removed", f"prefixItems lost {len(old_prefix) - len(new_prefix)} position(s)")
