"""The API design rules in the catalog: every new version is linted in the workers,
its report published, its score shown and filtered on; checks get the findings too."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from catalog_service.settings import Settings, SettingsError

from .conftest import LOOPBACK, collected
from .upstream import SWAGGER_2, Upstream, openapi_30

ADR = Path(__file__).parent / "adr"
SEVERITIES = ("error", "warning", "info", "hint")


def case(name: str) -> dict[str, Any]:
    return dict(json.loads((ADR / "testcases" / name / "openapi.json").read_text()))


def spectral(name: str) -> list[tuple[str, str, str, str]]:
    findings = json.loads((ADR / "spectral-json" / f"{name}.json").read_text())["findings"]
    return [(f["code"], SEVERITIES[f["severity"]], f["path"], f["message"]) for f in findings]


@pytest.fixture
async def linted(
    make_client: Any, settings: Settings, aiohttp_server: Any, admin: dict[str, str]
) -> tuple[TestClient, Upstream, Any]:
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(dataclasses.replace(settings, allowed_networks=LOOPBACK))
    apis = {
        "cor-api": case("cor-api"),
        "baseline": case("baseline"),
        "semver": case("semver-incorrect"),
        "afval": SWAGGER_2,
    }
    for name, document in apis.items():
        url = str(server.make_url(up.serve(name, document)))
        response = await client.post("/api/projects", json={"name": name, "swagger_url": url}, headers=admin)
        assert response.status == 201, await response.text()
    for name in apis:
        await collected(client, name)
    return client, up, server


def triples(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(f["rule"], f["severity"], f["path"], f["message"]) for f in report["findings"]]


async def test_a_published_version_has_its_report_as_spectral_would_make_it(linted: Any) -> None:
    client, _, _ = linted
    response = await client.get("/api/catalog/cor-api/lint")
    assert response.status == 200
    report = await response.json()
    assert report["ruleset"] == "NLGov API Design Rules (Logius, v2.2.0-rc.1-18-g6edd13c)"
    assert triples(report) == spectral("cor-api")  # 25 errors, in Spectral's order
    assert report["score"] == 100 and report["findings_total"] == 25
    semver = await (await client.get("/api/catalog/semver/lint")).json()
    assert semver["score"] == 88 and triples(semver) == spectral("semver-incorrect")


async def test_swagger_2_is_not_applicable_and_unknown_apis_are_404(linted: Any) -> None:
    client, _, _ = linted
    afval = await client.get("/api/catalog/afval/lint")
    assert afval.status == 404 and afval.content_type == "application/problem+json"
    assert "not applicable" in (await afval.json())["detail"]
    assert (await client.get("/api/catalog/nobody/lint")).status == 404


async def test_the_catalog_shows_and_filters_by_score(linted: Any) -> None:
    client, _, _ = linted
    body = await (await client.get("/api/catalog")).json()
    scores = {item["name"]: item["score"] for item in body["items"]}
    assert scores == {"afval": None, "baseline": 100, "cor-api": 100, "semver": 88}
    best = await (await client.get("/api/catalog", params={"min_score": "100"})).json()
    assert [item["name"] for item in best["items"]] == ["baseline", "cor-api"] and best["total"] == 2
    some = await (await client.get("/api/catalog", params={"min_score": "50"})).json()
    assert some["total"] == 3
    assert (await client.get("/api/catalog", params={"min_score": "101"})).status == 400

    index = await (await client.get("/", params={"min_score": "100"})).text()
    assert 'data-name="cor-api"' in index and 'data-name="semver"' not in index
    assert (await client.get("/", params={"min_score": "x"})).status == 400


async def test_the_api_page_lists_every_finding_with_a_link_to_its_place(linted: Any) -> None:
    client, _, _ = linted
    page = await (await client.get("/apis/cor-api")).text()
    assert page.count('class="finding error"') == 25
    assert "The content type of an error response should be application/problem+json" in page
    # A finding in an operation links to the operation on the page.
    assert 'href="#op-get-/heartbeat"' in page and 'id="op-get-/heartbeat"' in page
    # Elsewhere: to its place in the JSON document.
    assert 'href="/api/catalog/cor-api/openapi.json#/components/schemas/LocalDateTime/format"' in page
    semver = await (await client.get("/apis/semver", headers={"Accept-Language": "nl"})).text()
    assert "score 88 van 100, 1 bevinding" in semver
    afval = await (await client.get("/apis/afval")).text()
    assert "this API publishes Swagger 2.0" in afval


async def test_a_check_returns_the_findings_before_publishing(client: TestClient) -> None:
    response = await client.post("/api/validate", json=case("contact-no-email"))
    assert response.status == 200
    verdict = await response.json()
    assert verdict["valid"] is True
    assert verdict["lint"]["score"] == 88 and triples(verdict["lint"]) == spectral("contact-no-email")
    swagger = await (await client.post("/api/validate", json=SWAGGER_2)).json()
    assert swagger["valid"] is True and "lint" not in swagger
    # A generated document with thousands of findings: the first 1,000, and how many in all.
    many = openapi_30(title="Veel", paths=1_200)
    body = io.BytesIO(json.dumps(many).encode())
    report = (
        await (
            await client.post("/api/validate", data=body, headers={"Content-Type": "application/json"})
        ).json()
    )["lint"]
    assert len(report["findings"]) == 1000 and report["findings_total"] > 1200


async def test_every_answer_of_the_api_says_its_version(client: TestClient) -> None:
    for path in ("/api/health", "/api/catalog", "/api/catalog/nobody"):
        response = await client.get(path)
        assert response.headers["API-Version"] == "0.1.0", path


async def test_a_document_too_large_to_lint_in_time_keeps_its_verdict_without_a_report(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    client = await make_client(
        dataclasses.replace(settings, lint_timeout=0.2, allowed_networks=LOOPBACK, max_spec_bytes=50 * 2**20)
    )
    large = openapi_30(title="Groot", paths=20_000)
    body = io.BytesIO(json.dumps(large).encode())
    headers = {"Content-Type": "application/json", **admin}
    verdict = await (await client.post("/api/validate", data=body, headers=headers)).json()
    assert verdict["valid"] is True and "lint" not in verdict

    up = Upstream()
    server = await aiohttp_server(up.app)
    url = str(server.make_url(up.serve("groot", large)))
    await client.post("/api/projects", json={"name": "groot", "swagger_url": url}, headers=admin)
    assert (await collected(client, "groot"))["status"] == "valid"
    report = await client.get("/api/catalog/groot/lint")
    assert report.status == 404 and "linting took longer than 0.2 s" in (await report.json())["detail"]
    entry = await (await client.get("/api/catalog/groot")).json()
    assert entry["score"] is None
    page = await (await client.get("/apis/groot")).text()
    assert "No report for the published version: linting took longer than 0.2 s." in page


async def test_versions_linted_before_or_with_other_rules_are_linted_again_without_a_new_version(
    linted: Any,
    db: asyncpg.Connection,
    make_client: Any,
    settings: Settings,
    admin: dict[str, str],
    tmp_path: Path,
) -> None:
    client, _, _ = linted
    # As a catalog upgraded from before linting finds its versions.
    await db.execute("UPDATE documents SET lint = NULL, lint_score = NULL")
    await db.execute("UPDATE projects SET lint_score = NULL")
    before = await client.get("/api/catalog/semver/lint")
    assert before.status == 404 and "has not been linted" in (await before.json())["detail"]

    checked = (await (await client.get("/api/projects/semver")).json())["last_checked_at"]
    await client.post("/api/projects/semver/refresh", headers=admin)
    project = await collected(client, "semver", after=checked)
    assert [
        a["outcome"] for a in (await (await client.get("/api/projects/semver/collections")).json())["items"]
    ][0] == "unchanged"
    report = await (await client.get("/api/catalog/semver/lint")).json()
    assert report["score"] == 88 and triples(report) == spectral("semver-incorrect")
    assert (await (await client.get("/api/catalog/semver")).json())["score"] == 88

    # The City changes its rules: the next collection of each API lints it with them.
    rules = tmp_path / "city.yaml"
    rules.write_text(CITY_RULES)
    city = await make_client(
        dataclasses.replace(
            settings,
            allowed_networks=LOOPBACK,
            lint_ruleset=Settings.from_env({"CATALOG_LINT_RULESET": str(rules)}).lint_ruleset,
        )
    )
    await city.post("/api/projects/semver/refresh", headers=admin)
    await collected(city, "semver", after=project["last_checked_at"])
    report = await (await city.get("/api/catalog/semver/lint")).json()
    assert report["ruleset"].startswith("city.yaml") and report["score"] == 100


CITY_RULES = """
extends: [["spectral:oas", "off"]]
rules:
  city:operation-summary:
    severity: warn
    message: "Every operation needs a summary"
    given: "$.paths[*][get,put,post,delete,patch]"
    then:
      field: summary
      function: truthy
"""


async def test_the_city_may_lint_with_its_own_ruleset(
    make_client: Any, settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "city.yaml"
    rules.write_text(CITY_RULES)
    city = Settings.from_env({"CATALOG_LINT_RULESET": str(rules)})
    client = await make_client(dataclasses.replace(settings, lint_ruleset=city.lint_ruleset))
    document = case("baseline")
    for item in document["paths"].values():
        for operation in item.values():
            operation.pop("summary", None)
    verdict = await (await client.post("/api/validate", json=document)).json()
    assert verdict["lint"]["ruleset"].startswith("city.yaml (sha256 ")
    assert {f["rule"] for f in verdict["lint"]["findings"]} == {"city:operation-summary"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rules: {a: {given: '$', then: {function: nope}}}", "the function 'nope'"),
        ("rules: [", "not YAML"),
    ],
)
def test_a_ruleset_that_cannot_run_stops_the_service_at_start(tmp_path: Path, text: str, words: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    with pytest.raises(SettingsError, match="CATALOG_LINT_RULESET") as caught:
        Settings.from_env({"CATALOG_LINT_RULESET": str(rules)})
    assert words in str(caught.value)
    with pytest.raises(SettingsError, match="cannot read the ruleset"):
        Settings.from_env({"CATALOG_LINT_RULESET": str(tmp_path / "missing.yaml")})
