"""The API design rules linter against Spectral: Logius's test cases, linted by
Spectral 6.16.3 (tests/adr/), must give the same findings here; and a ruleset is a file
the City can edit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from catalog_service import lint

ADR = Path(__file__).parent / "adr"
CASES = sorted(path.stem for path in (ADR / "spectral-json").glob("*.json"))
SEVERITIES = ("error", "warning", "info", "hint")
SPEC = Path(__file__).resolve().parents[2] / "openapi" / "catalog.yaml"


@pytest.fixture(scope="module")
def adr() -> lint.Ruleset:
    return lint.load()


def test_every_logius_case_is_here() -> None:
    assert len(CASES) == 26
    assert {path.name for path in (ADR / "testcases").iterdir()} == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_findings_and_score_equal_spectral(case: str, adr: lint.Ruleset) -> None:
    spectral = json.loads((ADR / "spectral-json" / f"{case}.json").read_text())
    document = json.loads((ADR / "testcases" / case / "openapi.json").read_text())

    findings = lint.lint(document, adr)

    expected = [
        (item["code"], SEVERITIES[item["severity"]], item["path"], item["message"])
        for item in spectral["findings"]
    ]
    assert [(f.rule, f.severity, f.path, f.message) for f in findings] == expected
    assert lint.score(findings) == spectral["don_score"]


def test_the_score_rounds_half_up_as_developer_overheid_nl() -> None:
    def finding(rule: str, severity: str = "error") -> lint.Finding:
        return lint.Finding(rule, severity, "", "")

    assert lint.score([]) == 100
    # Three groups of eight failed: 62.5 is 63 (JavaScript's Math.round), not 62.
    failed = [finding("nlgov:semver"), finding("nlgov:missing-header"), finding("openapi3")]
    assert lint.score(failed) == 63
    # Two codes of one group fail it once; warnings and rules outside the groups count for nothing.
    assert lint.score([finding("nlgov:missing-header"), finding("nlgov:missing-version-header")]) == 88
    assert lint.score([finding("nlgov:semver", "warning"), finding("nlgov:use-problem-schema")]) == 100


def test_the_ruleset_file_is_the_one_logius_publishes(adr: lint.Ruleset) -> None:
    assert adr.name.startswith("NLGov API Design Rules")
    assert len(adr.rules) == 31
    text = (Path(lint.__file__).parent / "rulesets" / "linter.yaml").read_text()
    assert "nlgov:problem-invalid-input" in text and "CC BY" not in text  # unchanged: licence beside it
    assert (Path(lint.__file__).parent / "rulesets" / "LICENSE").read_text().startswith("Attribution 4.0")


CITY_RULES = """
extends:
  - ./adr.yaml
rules:
  nlgov:semver: off
  city:operation-summary:
    severity: warn
    message: "Every operation needs a summary"
    given: "$.paths[*][get,put,post,delete,patch]"
    then:
      field: summary
      function: truthy
  city:no-x-internal:
    severity: error
    message: "{{property}} is internal: {{error}}"
    given: "$..[?(@property && @property.match(/^x-internal/))]~"
    then:
      function: pattern
      functionOptions:
        notMatch: "^x-internal"
"""


def test_a_city_ruleset_extends_edits_and_adds_rules(tmp_path: Path, adr: lint.Ruleset) -> None:
    (tmp_path / "adr.yaml").write_text((Path(lint.__file__).parent / "rulesets" / "linter.yaml").read_text())
    (tmp_path / "city.yaml").write_text(CITY_RULES)
    document = json.loads((ADR / "testcases" / "semver-incorrect" / "openapi.json").read_text())
    operation = next(iter(next(iter(document["paths"].values())).values()))
    operation.pop("summary", None)
    operation["x-internal-owner"] = "team-x"

    city = lint.load(tmp_path / "city.yaml")
    findings = {(f.rule, f.path) for f in lint.lint(document, city)}

    assert city.name.startswith("city.yaml (sha256 ")
    assert ("nlgov:semver", "/info/version") in {(f.rule, f.path) for f in lint.lint(document, adr)}
    assert not any(rule == "nlgov:semver" for rule, _ in findings)
    path = next(iter(document["paths"]))
    method = next(iter(document["paths"][path]))
    pointer = "/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
    assert ("city:operation-summary", pointer) in findings
    assert ("city:no-x-internal", pointer + "/x-internal-owner") in findings


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ("rules: {a: {given: '$', then: {function: nope}}}", "rule a: the function 'nope'"),
        ("rules: {a: {given: '$[?(@.x', then: {function: truthy}}}", "rule a: "),
        ("rules: {a: {severity: loud, given: '$', then: {function: truthy}}}", "unknown severity 'loud'"),
        ("rules: {oas3-schema: error}", "rule oas3-schema is not defined"),
        ("extends: [https://example.org/rules.yaml]", "only spectral:oas and local files"),
        (
            "rules: {a: {given: '$', then: {function: pattern, functionOptions: {match: '('}}}}",
            "cannot read the pattern",
        ),
        ("[not, a, mapping]", "a ruleset is a mapping"),
    ],
)
def test_a_ruleset_the_linter_cannot_run_is_refused_with_the_reason(rules: str, words: str) -> None:
    with pytest.raises(lint.RulesetError, match=None) as caught:
        lint.parse(rules, "city.yaml")
    assert words in str(caught.value)


def test_references_are_reported_where_they_are_written_and_cycles_end(adr: lint.Ruleset) -> None:
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "t",
            "version": "1.0.0",
            "contact": {"name": "n", "email": "e@x", "url": "https://x"},
        },
        "servers": [{"url": "https://x/v1"}],
        "paths": {
            "/a": {"get": {"responses": {"404": {"$ref": "#/components/responses/Err"}}}},
            "/b": {"get": {"responses": {"404": {"$ref": "#/components/responses/Err"}}}},
        },
        "components": {
            "responses": {
                "Err": {
                    "description": "x",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}},
                }
            },
            "schemas": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "next": {"$ref": "#/components/schemas/Node"},
                        "birthDate": {"type": "string", "format": "date-time"},
                    },
                }
            },
        },
    }
    findings = [(f.rule, f.path) for f in lint.lint(document, adr)]
    # Two operations share one definition: one finding, at the definition.
    assert findings.count(("nlgov:use-problem-schema", "/components/responses/Err/content")) == 1
    assert (
        "nlgov:use-date-instead-of-datetime",
        "/components/schemas/Node/properties/birthDate/format",
    ) in findings


def test_our_own_api_description(adr: lint.Ruleset) -> None:
    """The README ("API design rules") names each rule our own API does not meet, and why."""
    document = yaml.safe_load(SPEC.read_text())
    findings = lint.lint(document, adr)
    assert {(f.rule, f.path) for f in findings} == {
        ("info-contact", "/info"),
        ("nlgov:include-major-version-in-uri", "/servers/0/url"),
        ("nlgov:query-keys-camel-case", "/paths/~1catalog/get/parameters/3/name"),
        ("nlgov:paths-kebab-case", "/paths/~1changes.atom"),
        ("path-keys-no-trailing-slash", "/paths/~1browse~1"),
        ("path-keys-no-trailing-slash", "/paths/~1ui~1"),
    }
    assert lint.score(findings) == 88
    readme = (SPEC.parents[1] / "README.md").read_text()
    for rule in {f.rule for f in findings}:
        assert f"`{rule}`" in readme
