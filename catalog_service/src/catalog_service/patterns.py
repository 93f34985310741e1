"""Regular expressions are strangers' code: a document's ``pattern`` is matched against
its own ``default`` during validation, and Python's backtracking ``re`` can take
exponential time on a pattern like ``^(a+)+$``. Inside the validation workers,
openapi-schema-validator matches patterns with the ``regex`` module instead, which
reads the same syntax as ``re`` but gives up after a deadline.

A pattern that cannot be matched within it is reported as the document's own
validation error: the reference (openapi-spec-validator with ``re``) would not finish
at all on such a document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import regex
from jsonschema import ValidationError

# Seconds one match may take; real patterns take microseconds.
MATCH_SECONDS = 0.25


def _search(pattern: str, instance: str) -> bool | None:
    """Whether ``pattern`` matches; None when matching took too long."""
    try:
        return regex.search(pattern, instance, timeout=MATCH_SECONDS) is not None
    except TimeoutError:
        return None
    except regex.error:
        # A pattern the regex module reads differently from re: re decides, as the
        # reference does.
        return re.search(pattern, instance) is not None


def bounded_pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's ``pattern`` keyword, with a deadline."""
    if not validator.is_type(instance, "string"):
        return
    found = _search(pattern, instance)
    if found is None:
        yield ValidationError(
            f"the pattern {pattern!r} takes too long to match {instance[:100]!r} "
            f"(more than {MATCH_SECONDS:g} seconds): it backtracks catastrophically"
        )
    elif not found:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def bounded(validator_class: Any) -> Any:
    """A jsonschema validator class whose ``pattern`` keyword has the deadline."""
    return jsonschema.validators.extend(validator_class, {"pattern": bounded_pattern})


def install() -> None:
    """Make openapi-schema-validator match patterns with ``bounded_pattern``. Called once
    by each validation worker when it starts; it looks the function up at every match."""
    from openapi_schema_validator import _keywords

    _keywords._pattern = bounded_pattern  # type: ignore[attr-defined]
