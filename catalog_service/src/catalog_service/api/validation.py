"""Request validation as connexion does it, strict where it is loose, and in words.

connexion checks parameters and bodies against the spec with jsonschema; this
module changes three things about it:

- a 400 says in one sentence which field broke which rule ("limit must be at most
  1000"), never a dump of jsonschema's internals;
- a ``pattern`` must match the whole value: JSON Schema patterns follow ECMA-262,
  where ``$`` ends the string, but Python's ``$`` also matches before a final
  newline, which would let ``"name\\n"`` through;
- an empty query value (``?tag=``) is a value, checked like any other, where
  connexion's query parsing would drop it silently.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from connexion.decorators.validation import (
    ParameterValidator,
    RequestBodyValidator,
    TypeValidationError,
    coerce_type,
)
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_json_mimetype
from jsonschema import Draft4Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend

_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a list",
    "null": "null",
}


@functools.lru_cache(maxsize=256)
def whole_value(pattern: str) -> re.Pattern[str]:
    """``pattern`` with a final unescaped ``$`` meaning the end of the value, as in ECMA-262."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not whole_value(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


StrictRequestValidator = extend(Draft4RequestValidator, {"pattern": _pattern})
_FORMATS = Draft4Validator.FORMAT_CHECKER
# The spec's pattern for free text: PostgreSQL text cannot hold NUL, so the spec
# says so rather than the database failing. (An unpaired surrogate cannot be stored
# either; the body_limit middleware refuses those, as patterns cannot name them
# portably.)
STORABLE_TEXT = "^[^\\x00]*$"


def _words(kind: Any) -> str:
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds)


def _where(name: str, error: ValidationError) -> str:
    where = name
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the request body"


def describe(name: str, error: ValidationError) -> str:
    """One sentence: which value broke which rule of the spec."""
    where = _where(name, error)
    rule, expected = error.validator, error.validator_value
    if rule == "maximum":
        return f"{where} must be at most {expected}"
    if rule == "minimum":
        return f"{where} must be at least {expected}"
    if rule == "maxLength":
        return f"{where} must be at most {expected} characters long"
    if rule == "minLength":
        return (
            f"{where} must not be empty"
            if expected == 1
            else f"{where} must be at least {expected} characters long"
        )
    if rule == "pattern" and expected == STORABLE_TEXT:
        return f"{where} must not contain a NUL character"
    if rule == "pattern":
        return f"{where} must match the pattern {expected}"
    if rule == "enum":
        return f"{where} must be one of: " + ", ".join(str(value) for value in expected if value is not None)
    if rule == "type":
        return f"{where} must be {_words(expected)}"
    if rule == "format":
        return f"{where} must be a valid {expected}"
    if rule == "required":
        missing = re.match(r"^'(.*)' is a required property$", error.message)
        field = missing.group(1) if missing else "?"
        return f"{where} lacks the required field {field!r}"
    if rule == "additionalProperties":
        known = set((error.schema or {}).get("properties", {}))
        extra = sorted(str(key) for key in error.instance if key not in known)
        return f"{where} has a field the spec does not define: " + ", ".join(repr(key) for key in extra)
    if rule == "minProperties":
        return f"{where} must have at least {expected} field{'s' if expected != 1 else ''}"
    if rule == "maxItems":
        return f"{where} must have at most {expected} items"
    if rule == "minItems":
        return f"{where} must have at least {expected} items"
    if rule == "readOnly":
        return f"{where} is read-only"
    return f"{where} is not valid: {error.message[:200]}"


def parse_json_body(body: bytes) -> Any:
    """A request body sent as application/json, or a 400 that says what is wrong with it."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequestProblem(detail="the request body nests too deeply") from None
    except ValueError:
        raise BadRequestProblem(
            detail="the request body is not valid JSON (a document to be judged as it is "
            "may be sent as application/octet-stream)"
        ) from None


class HumanParameterValidator(ParameterValidator):  # type: ignore[misc]
    def validate_query_parameter(self, param: dict[str, Any], request: Any) -> str | None:
        if "" in request.context.query.getall(param["name"], []):
            # connexion's query parsing drops empty values: check them as given.
            return self.validate_parameter("query", "", param)
        error: str | None = super().validate_query_parameter(param, request)
        return error

    def validate_parameter(
        self, parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        name = param_name or param["name"]
        if value is None:
            return f"the {parameter_type} parameter {name} is required" if param.get("required") else None
        try:
            converted = coerce_type(param, value, parameter_type, param_name)
        except TypeValidationError as exc:
            return f"{name} must be {_words(exc.schema_type)}"
        schema = {key: v for key, v in param.get("schema", param).items() if key != "required"}
        error = best_match(StrictRequestValidator(schema, format_checker=_FORMATS).iter_errors(converted))
        return describe(name, error) if error is not None else None


class HumanBodyValidator(RequestBodyValidator):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["validator"] = StrictRequestValidator
        super().__init__(*args, **kwargs)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        checked = super().__call__(function)

        @functools.wraps(function)
        def wrapper(request: Any) -> Any:
            if not request.body:
                return checked(request)
            if not is_json_mimetype(request.headers.get("Content-Type", "")):
                # Only POST /api/validate gets here (body_limit answers every other
                # route's non-JSON body with a 415): a document in YAML, or in no
                # format at all, which its handler judges as the collector would.
                return function(request)
            # Parsed here first for a 400 in words, deep nesting included.
            parse_json_body(request.body)
            return checked(request)

        return wrapper

    def validate_schema(self, data: Any, url: str) -> None:
        if self.is_null_value_valid and data is None:
            return None
        error = best_match(self.validator.iter_errors(data))
        if error is not None:
            raise BadRequestProblem(detail=describe("", error))
        return None


VALIDATOR_MAP = {"parameter": HumanParameterValidator, "body": HumanBodyValidator}
