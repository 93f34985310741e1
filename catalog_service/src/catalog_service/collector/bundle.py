"""Documents split over many files, joined into one self-contained document: the
bundle that is validated, stored, compared and published.

Pure code, run in the validation workers: the collector downloads the files through
the guarded fetcher and hands their bytes here; nothing here touches the network.

Referenced parts go into the root document's components (``definitions``,
``parameters`` and ``responses`` in Swagger 2.0), named after what they are, so the
bundle reads like a document a person wrote, as ``redocly bundle`` leaves it. A part
with no component section of its own (a path item before OpenAPI 3.1, anything
outside the structure OpenAPI describes) is put where it is first referenced, and
later references point there. References that come back to a part already placed
(cycles across files, legal in OpenAPI) become references inside the bundle.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ..domain import HTTP_METHODS, SpecFormat, ValidationError, storable_text
from ..pointers import pointer, resolve, unescape
from .analyze import Rejected, decode, external_references, parse

# What each part of an OpenAPI document holds, by the name of its field. A kind
# missing here holds nothing we follow into ("other"); "data" (examples, defaults,
# enums) is never looked into: a "$ref" there is a value, not a reference.
_FIELDS: dict[str, dict[str, str]] = {
    "document": {
        "paths": "paths",
        "webhooks": "pathItems",
        "components": "components",
        # Swagger 2.0's component sections.
        "definitions": "schemas",
        "parameters": "parameters",
        "responses": "responses",
    },
    "pathItem": {"parameters": "parameters"} | dict.fromkeys(HTTP_METHODS, "operation"),
    "operation": {
        "parameters": "parameters",
        "requestBody": "requestBody",
        "responses": "responses",
        "callbacks": "callbacks",
    },
    "parameter": {"schema": "schema", "content": "content", "examples": "examples", "example": "data"},
    "header": {"schema": "schema", "content": "content", "examples": "examples", "example": "data"},
    "response": {
        "content": "content",
        "headers": "headers",
        "links": "links",
        "schema": "schema",
        "examples": "data",
    },
    "requestBody": {"content": "content"},
    "mediaType": {"schema": "schema", "examples": "examples", "example": "data", "encoding": "encodings"},
    "encoding": {"headers": "headers"},
    "example": {"value": "data"},
    "components": {
        "schemas": "schemas",
        "parameters": "parameters",
        "responses": "responses",
        "requestBodies": "requestBodies",
        "headers": "headers",
        "examples": "examples",
        "links": "links",
        "callbacks": "callbacks",
        "securitySchemes": "securitySchemes",
        "pathItems": "pathItems",
    },
    "schema": {
        **dict.fromkeys(
            ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"), "schemas"
        ),
        **dict.fromkeys(("allOf", "anyOf", "oneOf", "prefixItems"), "schemas"),
        **dict.fromkeys(
            (
                "items",
                "additionalItems",
                "additionalProperties",
                "not",
                "if",
                "then",
                "else",
                "contains",
                "propertyNames",
                "unevaluatedItems",
                "unevaluatedProperties",
                "contentSchema",
            ),
            "schema",
        ),
        **dict.fromkeys(("example", "examples", "default", "enum", "const"), "data"),
    },
}
# Maps and lists whose every member is of one kind.
_MEMBERS = {
    "paths": "pathItem",
    "pathItems": "pathItem",
    "parameters": "parameter",
    "responses": "response",
    "requestBodies": "requestBody",
    "content": "mediaType",
    "encodings": "encoding",
    "headers": "header",
    "examples": "example",
    "links": "link",
    "callbacks": "callback",
    "callback": "pathItem",
    "securitySchemes": "securityScheme",
    "schemas": "schema",
}
# Where a referenced part of each kind is placed in the bundle.
_SECTIONS_3 = {
    "schema": "schemas",
    "parameter": "parameters",
    "response": "responses",
    "requestBody": "requestBodies",
    "header": "headers",
    "example": "examples",
    "link": "links",
    "callback": "callbacks",
    "securityScheme": "securitySchemes",
}
_SECTIONS_2 = {"schema": "definitions", "parameter": "parameters", "response": "responses"}
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _child_kind(kind: str, key: str | int) -> str:
    if kind in _MEMBERS:
        return _MEMBERS[kind]
    if kind == "schema" and isinstance(key, int):
        return "schema"  # items: [...] of draft 4
    if kind == "other":
        return "other"
    return _FIELDS.get(kind, {}).get(str(key), "other")


def _copy(value: Any) -> Any:
    # Parsed JSON holds only dicts, lists and scalars: a JSON round trip is the
    # fastest faithful copy.
    return json.loads(json.dumps(value))


class BundleError(Exception):
    """Why files cannot be bundled: the file, the pointer in it, and what is wrong."""

    def __init__(self, source: str, path: str, message: str) -> None:
        # All three in args: the error crosses the worker's pipe pickled.
        super().__init__(source, path, message)
        self.source, self.path, self.message = source, path, message

    def __str__(self) -> str:
        return self.message


def split_reference(reference: str, base: str) -> tuple[str, str]:
    """The absolute URL of the file a $ref points into, and the JSON pointer in it."""
    target, fragment = urldefrag(urljoin(base, reference))
    fragment = unquote(fragment)
    if fragment and not fragment.startswith("/"):
        raise ValueError(f"{reference!r}: only JSON pointers ('#/...') are supported after '#'")
    return target, fragment


def files_referenced(raw: bytes, charset: str | None, url: str, max_expanded_bytes: int) -> list[str]:
    """The other files one file refers to (absolute URLs, without fragments). Raises
    BundleError when the file cannot be read."""
    document = parse_file(raw, charset, url, max_expanded_bytes)
    found: list[str] = []
    for ref, path in external_references(document):
        try:
            target, _ = split_reference(ref, url)
        except ValueError as exc:
            raise BundleError(url, pointer((*path, "$ref")), str(exc)) from None
        if urldefrag(target)[0] != urldefrag(url)[0] and target not in found:
            found.append(target)
    return found


def parse_file(raw: bytes, charset: str | None, url: str, max_expanded_bytes: int) -> Any:
    try:
        return parse(decode(raw, charset), max_expanded_bytes)[0]
    except Rejected as exc:
        raise BundleError(url, "", str(exc)) from None


@dataclass
class Bundle:
    document: dict[str, Any]
    # Where each placed part came from: its pointer in the bundle -> (file URL, pointer there).
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)


class _Bundler:
    def __init__(self, files: dict[str, Any], root: str, spec_format: SpecFormat) -> None:
        self.files = files
        self.root = root
        self.document: dict[str, Any] = files[root]
        self.swagger = spec_format == "swagger-2.0"
        self.sections = dict(_SECTIONS_2 if self.swagger else _SECTIONS_3)
        if spec_format == "openapi-3.1":
            self.sections["pathItem"] = "pathItems"
        self.placed: dict[tuple[str, str], str] = {}
        self.provenance: dict[str, tuple[str, str]] = {}

    def _section(self, name: str) -> dict[str, Any]:
        holder = self.document if self.swagger else self.document.setdefault("components", {})
        if not isinstance(holder, dict):
            raise BundleError(self.root, "/components", "components is not a mapping")
        section = holder.setdefault(name, {})
        if not isinstance(section, dict):
            raise BundleError(self.root, pointer(["components", name]), f"{name} is not a mapping")
        return section

    def _name(self, section: dict[str, Any], url: str, fragment: str) -> str:
        last = unescape(fragment.rsplit("/", 1)[-1]) if fragment else ""
        if not last or last.isdigit():
            stem = posixpath.splitext(posixpath.basename(urldefrag(url)[0].split("?", 1)[0]))[0]
            last = f"{stem}-{last}" if last else stem
        base = _NAME.sub("_", last).strip("_") or "part"
        name, n = base, 1
        while name in section:
            n += 1
            name = f"{base}-{n}"
        return name

    def _claim_own_components(self) -> None:
        """A root component that is only a reference to another file is where that
        file's part goes, under the name the root gives it (no second copy elsewhere)."""
        holder = self.document if self.swagger else self.document.get("components")
        if not isinstance(holder, dict):
            return
        outer: tuple[str, ...] = () if self.swagger else ("components",)
        for section_name in dict.fromkeys(self.sections.values()):
            section = holder.get(section_name)
            if not isinstance(section, dict):
                continue
            for name, entry in section.items():
                ref = entry.get("$ref") if isinstance(entry, dict) else None
                if not isinstance(ref, str) or ref.startswith("#"):
                    continue
                try:
                    target = split_reference(ref, self.root)
                except ValueError:
                    continue  # reported when the walk comes to it
                if target[0] != self.root:
                    self.placed.setdefault(target, "#" + pointer((*outer, section_name, name)))

    def run(self) -> Bundle:
        self._claim_own_components()
        # (holder, key in holder, kind, file the value came from, its pointer in the bundle)
        stack: list[tuple[Any, str | int, str, str, tuple[str | int, ...]]] = [
            ({"": self.document}, "", "document", self.root, ())
        ]
        while stack:
            holder, key, kind, source, where = stack.pop()
            value = holder[key]
            if kind == "data":
                continue
            if isinstance(value, dict):
                ref = value.get("$ref")
                if isinstance(ref, str):
                    self._follow(holder, key, kind, source, where, ref, stack)
                    continue
                items: Any = list(value.items())
            elif isinstance(value, list):
                items = list(enumerate(value))
            else:
                continue
            for child_key, _ in items:
                stack.append((value, child_key, _child_kind(kind, child_key), source, (*where, child_key)))
        return Bundle(self.document, self.provenance)

    def _follow(
        self,
        holder: Any,
        key: str | int,
        kind: str,
        source: str,
        where: tuple[str | int, ...],
        ref: str,
        stack: list[tuple[Any, str | int, str, str, tuple[str | int, ...]]],
    ) -> None:
        node = holder[key]
        if source == self.root and ref.startswith("#"):
            return  # the root's own reference, left exactly as written
        try:
            target, fragment = split_reference(ref, source)
        except ValueError as exc:
            raise BundleError(source, "", str(exc)) from None
        if target == self.root:
            node["$ref"] = "#" + fragment
            return
        here = "#" + pointer(where)
        placed = self.placed.get((target, fragment))
        if placed is not None and placed != here:
            node["$ref"] = placed
            return
        if target not in self.files:
            raise BundleError(source, "", f"the reference {ref!r} points to a file that was not fetched")
        try:
            part = resolve(self.files[target], fragment)
        except KeyError as exc:
            raise BundleError(
                target, fragment, f"the reference {ref!r} points to nothing: no {exc.args[0]!r}"
            ) from None
        section_name = self.sections.get(kind)
        entry = (section_name,) if self.swagger else ("components", section_name)
        if section_name is not None and where[:-1] != entry and placed is None:
            section = self._section(section_name)
            name = self._name(section, target, fragment)
            section[name] = _copy(part)
            at: tuple[str | int, ...] = (
                (section_name, name) if self.swagger else ("components", section_name, name)
            )
            self.placed[(target, fragment)] = "#" + pointer(at)
            self.provenance[pointer(at)] = (target, fragment)
            node["$ref"] = "#" + pointer(at)
            stack.append((section, name, kind, target, at))
            return
        # A component that is only a reference to another file, or a part with no
        # section for it: the part goes here, and later references point here.
        self.placed[(target, fragment)] = here
        self.provenance[pointer(where)] = (target, fragment)
        copied = _copy(part)
        if isinstance(copied, dict):
            copied |= {k: v for k, v in node.items() if k != "$ref"}
        holder[key] = copied
        stack.append((holder, key, kind, target, where))


def bundle(files: dict[str, Any], root: str, spec_format: SpecFormat) -> Bundle:
    """The root document with every part of the other files it refers to brought in.
    ``files`` maps each file's URL (without fragment) to its parsed content; the root
    document is changed in place. Raises BundleError naming the file and the pointer."""
    return _Bundler(files, root, spec_format).run()


def locate(
    errors: list[ValidationError], provenance: dict[str, tuple[str, str]], root: str
) -> list[ValidationError]:
    """Errors found in the bundle, each told in the file it came from: ``source`` is
    that file's URL, ``path`` the pointer in it."""
    located: list[ValidationError] = []
    prefixes = sorted(provenance, key=len, reverse=True)
    for error in errors:
        path = error["path"]
        source, inner = root, path
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                source, fragment = provenance[prefix]
                inner = fragment + path[len(prefix) :]
                break
        located.append({"message": error["message"], "path": storable_text(inner) or "", "source": source})
    return located


@dataclass
class Joined:
    """A bundle as the worker hands it back: its JSON bytes and where its parts came from."""

    raw: bytes
    provenance: dict[str, tuple[str, str]]


def references_of(
    files: dict[str, tuple[bytes, str | None]], max_expanded_bytes: int
) -> dict[str, list[str] | BundleError]:
    """For each file, the other files it refers to, or why it cannot be read."""
    found: dict[str, list[str] | BundleError] = {}
    for url, (raw, charset) in files.items():
        try:
            found[url] = files_referenced(raw, charset, url, max_expanded_bytes)
        except BundleError as exc:
            found[url] = exc
    return found


def joined(
    root: str, spec_format: SpecFormat, files: dict[str, tuple[bytes, str | None]], max_expanded_bytes: int
) -> Joined | BundleError:
    """The files, read and bundled into one document's JSON bytes."""
    try:
        parsed = {
            url: parse_file(raw, charset, url, max_expanded_bytes) for url, (raw, charset) in files.items()
        }
        result = bundle(parsed, root, spec_format)
        text = json.dumps(result.document, ensure_ascii=False, allow_nan=False)
    except BundleError as exc:
        return exc
    except RecursionError:
        return BundleError(root, "", "the bundle nests too deeply to write out")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        # Unpaired surrogates from JSON escapes: keep them escaped.
        raw = json.dumps(result.document, ensure_ascii=True, allow_nan=False).encode()
    if len(raw) > max_expanded_bytes:
        return BundleError(root, "", f"the bundle expands to more than {max_expanded_bytes} bytes")
    return Joined(raw, result.provenance)
