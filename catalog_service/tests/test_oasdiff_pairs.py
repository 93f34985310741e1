"""The catalog's breaking-change checker against oasdiff's own test pairs.

oasdiff is the reference for OpenAPI breaking-change detection; its checker tests
say, for each pair of documents, what it finds (tests/oasdiff/README.md). Judged on
the whole pair (for a test that runs one of oasdiff's checks: on that check's rules),
the catalog must flag breaking at least 90% of the pairs oasdiff flags breaking (ERR),
and at most 3% of the others.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog_service.compare import diff

HERE = Path(__file__).resolve().parent / "oasdiff"
PAIRS: list[dict[str, Any]] = json.loads((HERE / "pairs.json").read_text())["pairs"]
# The day the pairs were measured: sunset dates are judged against it, as oasdiff's
# tests judge them against theirs (dates far in the past or the future).
TODAY = dt.date(2026, 11, 24)


@cache
def document(name: str) -> Any:
    return yaml.load((HERE / name).read_text(), Loader=yaml.CSafeLoader)


def flagged(pair: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether the checker flags the pair breaking (on the rules oasdiff's test ran)."""
    rules = set(pair["family"]) | set(pair["ids"]) if pair["family"] else None
    changes = diff(document(pair["base"]), document(pair["revision"]), today=TODAY)
    breaking = [
        c["id"]
        for c in changes
        if c["breaking"] and c["id"] != "unannounced-breaking-change" and (rules is None or c["id"] in rules)
    ]
    return bool(breaking), breaking


def test_the_pairs_are_oasdiffs() -> None:
    assert len(PAIRS) >= 300
    assert all((HERE / p["base"]).is_file() and (HERE / p["revision"]).is_file() for p in PAIRS)
    assert sum("ERR" in p["levels"] for p in PAIRS) >= 170


def test_breaking_pairs_are_flagged_and_the_others_are_not() -> None:
    missed, alarms = [], []
    breaking_pairs = [p for p in PAIRS if "ERR" in p["levels"]]
    other_pairs = [p for p in PAIRS if "ERR" not in p["levels"]]
    for pair in breaking_pairs:
        if not flagged(pair)[0]:
            missed.append(pair["test"])
    for pair in other_pairs:
        found, ids = flagged(pair)
        if found:
            alarms.append((pair["test"], ids))
    recall = 1 - len(missed) / len(breaking_pairs)
    false_alarms = len(alarms) / len(other_pairs)
    print(f"oasdiff's breaking pairs flagged: {recall:.1%}; other pairs flagged: {false_alarms:.1%}")
    assert recall >= 0.90, missed
    assert false_alarms <= 0.03, alarms


@pytest.mark.parametrize(
    ("test", "rule"),
    [
        # A few named, so that a regression in one family shows by name.
        (
            "check_request_parameter_became_enum_test.go:TestRequestParameterBecameEnum",
            "request-parameter-became-enum",
        ),
        ("check_api_removed_test.go:TestBreaking_RemoveBeforeSunset", "api-removed-before-sunset"),
        (
            "check_breaking_property_test.go:TestBreaking_ReqBodyNewRequiredProperty",
            "new-required-request-property",
        ),
        (
            "check_breaking_property_test.go:TestBreaking_RespBodyPropertyNullable",
            "response-property-became-nullable",
        ),
    ],
)
def test_named_pairs_get_oasdiffs_rule_id(test: str, rule: str) -> None:
    [pair] = [p for p in PAIRS if p["test"] == f"checker/{test}"]
    changes = diff(document(pair["base"]), document(pair["revision"]), today=TODAY)
    assert rule in {c["id"] for c in changes}
