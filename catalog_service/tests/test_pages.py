"""The pages for people (/, /apis/NAME) and for discovery tools (/.well-known/api-catalog)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .conftest import collected, register


async def test_the_index_shows_every_api_with_its_status_and_links(catalog: Any) -> None:
    client, _, _ = catalog
    response = await client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    html = await response.text()
    assert "4 APIs: 3 valid, 1 invalid, 0 unreachable, 0 pending." in html
    for name in ["afval", "parkeren", "weather", "broken"]:
        assert f'data-name="{name}"' in html
    assert '<span class="badge invalid">invalid</span>' in html
    assert 'href="/api/browse/?primaryName=parkeren"' in html
    assert 'href="/api/catalog/parkeren/openapi.yaml"' in html
    assert 'href="/apis/broken#errors"' in html
    assert response.headers["Link"] == '</.well-known/api-catalog>; rel="api-catalog"'


async def test_the_index_search_box_uses_the_catalog_search(catalog: Any) -> None:
    client, _, _ = catalog
    html = await (await client.get("/", params={"q": "vergunning"})).text()
    assert 'data-name="parkeren"' in html and 'data-name="weather"' not in html
    html = await (await client.get("/", params={"status": "invalid"})).text()
    assert 'data-name="broken"' in html and 'data-name="parkeren"' not in html
    assert "No API matches" in await (await client.get("/", params={"q": "zzzzqqq"})).text()
    bad = await client.get("/", params={"status": "nonsense"})
    # A page's error is a page: a browser shows it.
    assert bad.status == 400 and bad.content_type == "text/html"
    assert "status must be one of" in await bad.text()


async def test_text_from_documents_is_escaped_in_pages(client: TestClient, admin: dict[str, str]) -> None:
    await client.post(
        "/api/projects",
        json={
            "name": "xss",
            "swagger_url": "https://example.org/x.json",
            "title": "<script>alert(1)</script>",
        },
        headers=admin,
    )
    html = await (await client.get("/")).text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_an_api_page_explains_its_errors_and_collections(catalog: Any) -> None:
    client, _, _ = catalog
    html = await (await client.get("/apis/broken")).text()
    assert 'id="errors"' in html and "Validation errors of the latest document" in html
    assert "registration" in html and "invalid" in html
    assert (await client.get("/apis/nobody")).status == 404


async def test_the_api_catalog_linkset_points_at_every_published_api(catalog: Any) -> None:
    client, _, _ = catalog
    response = await client.get("/.well-known/api-catalog")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/linkset+json")
    linkset = json.loads(await response.text())["linkset"]
    origin = str(client.make_url("")).rstrip("/")
    assert linkset[0]["anchor"] == f"{origin}/.well-known/api-catalog"
    assert {item["href"] for item in linkset[0]["item"]} == {
        f"{origin}/api/catalog/{name}" for name in ["afval", "parkeren", "weather"]
    }
    parkeren = next(c for c in linkset if c["anchor"].endswith("/api/catalog/parkeren"))
    assert parkeren["service-desc"][0]["href"] == f"{origin}/api/catalog/parkeren/openapi.json"
    assert parkeren["service-doc"][0]["href"] == f"{origin}/api/browse/?primaryName=parkeren"
    head = await client.head("/.well-known/api-catalog")
    assert head.status == 200


async def test_metrics_count_requests_per_operation(client: TestClient) -> None:
    for _ in range(3):
        await client.get("/api/health")
    text = await (await client.get("/metrics")).text()
    assert 'catalog_http_requests_total{operation="GET /api/health",status="200"} 3.0' in text
    assert "catalog_http_request_duration_seconds_bucket" in text
    assert "catalog_queue_depth" in text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/?q=%00", 400),
        ("/?q=" + "a" * 5000, 200),
        ("/?offset=99999999999999999999", 400),
        ("/?offset=-5", 400),
        ("/?offset=1e3", 400),
        ("/?status=%00", 400),
        ("/apis/%00", 404),
        ("/apis/UPPER", 404),
        ("/apis/" + "x" * 300, 404),
        ("/apis/no-such", 404),
        ("/apis/%ff%fe", 404),
    ],
)
async def test_bad_input_to_a_page_is_an_html_page_never_a_5xx(client: Any, path: str, status: int) -> None:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"


async def test_pages_and_answers_carry_security_headers(catalog: Any) -> None:
    client, _, _ = catalog
    for path in ("/", "/apis/parkeren", "/api/browse/?primaryName=parkeren", "/api/ui/"):
        page = await client.get(path)
        assert page.status == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data:" in policy
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"
    data = await client.get("/api/catalog")
    assert data.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert data.headers["X-Content-Type-Options"] == "nosniff"


def _nasty(random: Any) -> str:
    """A query value or path segment as an attacker might send it, percent-encoded."""
    pieces = [
        "%00", "%ff", "%ed%a0%80", "%c0%af", "%0a", "%0d%0a", "%25", "%2f", "..", "\\", "'", '"', "<script>",
        "9" * random.randint(1, 40), "-" + "9" * random.randint(1, 30), "1e309", "NaN", "\u202e", "é", "😀",
        "a" * random.randint(0, 3000), " ", "+", "&", "=", "#",
    ]  # fmt: skip
    return "".join(random.choice(pieces) for _ in range(random.randint(0, 6)))


async def test_fuzzed_page_requests_get_pages_never_a_5xx(client: Any) -> None:
    # The pages lie outside the spec, where schemathesis does not go: fuzz them here.
    import random as random_module

    random = random_module.Random(20261124)
    for _ in range(300):
        parameter = random.choice(["q", "status", "offset", "tag", "sort", "x"])
        path = random.choice(
            [
                f"/?{parameter}={_nasty(random)}",
                f"/apis/{_nasty(random) or 'x'}",
                f"/?q={_nasty(random)}&offset={_nasty(random)}",
            ]
        )
        response = await client.get(path, allow_redirects=False)
        assert response.status < 500, (path, response.status)
        if path.startswith("/?"):
            assert response.content_type == "text/html", (path, response.content_type)
        else:
            # /apis/NAME is a page; a path that is no route (a '#' cut it short) is a problem.
            assert response.content_type in ("text/html", "application/problem+json"), path


async def test_descriptions_are_rendered_markdown_with_nothing_raw_from_the_document(
    collecting: Any, admin: dict[str, str], upstream: Any
) -> None:
    up, server = upstream
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "Slimme lantaarnpalen",
            "version": "1",
            "description": "### The Internet of Things\n\nSee [the docs](https://docs.example.org) and "
            "[this](javascript:alert(1)). <script>alert(1)</script>"
            '<img src="https://evil.example/track.png" onerror="alert(2)"> **Lights** on demand.',
        },
        "paths": {},
    }
    await register(collecting, admin, "lantaarns", str(server.make_url(up.serve("lantaarns", document))))
    await collected(collecting, "lantaarns")
    page = await (await collecting.get("/apis/lantaarns")).text()
    assert "<h3>The Internet of Things</h3>" in page and "<strong>Lights</strong>" in page
    assert '<a href="https://docs.example.org" rel="noopener noreferrer nofollow">the docs</a>' in page
    for raw in ("<script>alert", 'href="javascript:', "evil.example", "onerror", "###"):
        assert raw not in page, raw
    index = await (await collecting.get("/")).text()
    assert "The Internet of Things See the docs" in index and "###" not in index


async def test_the_index_filters_by_tag_and_sorts_and_keeps_what_was_chosen(catalog: Any) -> None:
    client, _, _ = catalog
    html = await (await client.get("/", params={"tag": "mobiliteit"})).text()
    assert 'data-name="parkeren"' in html and 'data-name="broken"' in html
    assert 'data-name="afval"' not in html and 'value="mobiliteit"' in html
    by_status = await (await client.get("/", params={"sort": "status"})).text()
    assert by_status.index('data-name="broken"') < by_status.index('data-name="afval"')  # invalid < valid
    assert "<strong>status</strong>" in by_status
    bad = await client.get("/", params={"sort": "colour"})
    assert bad.status == 400 and bad.content_type == "text/html"


async def test_the_page_of_an_api_lists_its_operations_and_every_version_to_download(catalog: Any) -> None:
    client, _, _ = catalog
    page = await (await client.get("/apis/parkeren")).text()
    for cell in ("<code>GET</code>", "<code>/vergunningen</code>", "Zoek vergunningen", "(deprecated)"):
        assert cell in page
    versions = await (await client.get("/api/catalog/parkeren/versions")).json()
    sha = versions["items"][0]["sha256"]
    assert f"/api/catalog/parkeren/versions/{sha}/openapi.json" in page
    as_json = await client.get(f"/api/catalog/parkeren/versions/{sha}/openapi.json")
    assert as_json.status == 200 and (await as_json.json())["info"]["title"] == "Parkeervergunningen"
    assert "immutable" in as_json.headers["Cache-Control"]
    as_yaml = await client.get(f"/api/catalog/parkeren/versions/{sha}/openapi.yaml")
    assert as_yaml.status == 200 and "Parkeervergunningen" in await as_yaml.text()
    again = await client.get(
        f"/api/catalog/parkeren/versions/{sha}/openapi.json",
        headers={"If-None-Match": as_json.headers["ETag"]},
    )
    assert again.status == 304
    missing = await client.get(f"/api/catalog/parkeren/versions/{'0' * 64}/openapi.json")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    broken = await (await client.get("/api/catalog/broken/versions")).json()
    invalid = await client.get(f"/api/catalog/broken/versions/{broken['items'][0]['sha256']}/openapi.json")
    assert invalid.status == 404 and "not valid" in (await invalid.json())["detail"]


async def test_pages_speak_dutch_to_a_dutch_browser_and_english_to_others(catalog: Any) -> None:
    client, _, _ = catalog
    dutch = await client.get("/", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"})
    html = await dutch.text()
    assert dutch.headers["Content-Language"] == "nl" and '<html lang="nl">' in html
    assert "4 API's: 3 geldig, 1 ongeldig, 0 onbereikbaar, 0 in afwachting." in html
    assert '<span class="badge invalid">ongeldig</span>' in html
    assert "Accept-Language" in dutch.headers["Vary"]
    # q-values decide, not the order; a language we do not speak falls back to English.
    weighed = await (await client.get("/", headers={"Accept-Language": "en;q=0.5, nl;q=0.9"})).text()
    assert "API-catalogus" in weighed
    for header in ("de-DE,fr;q=0.8", "", "*", "nl;q=0, en", "nl;q=nonsense, en;q=0.1"):
        english = await client.get("/", headers={"Accept-Language": header})
        assert english.headers["Content-Language"] == "en", header
        assert "3 valid, 1 invalid" in await english.text()
    page = await (await client.get("/apis/parkeren", headers={"Accept-Language": "nl"})).text()
    assert "Geschiedenis van wijzigingen" in page and "Operaties" in page and "(verouderd)" in page
    missing = await client.get("/apis/no-such-api", headers={"Accept-Language": "nl"})
    assert missing.status == 404 and "<h1>Niet gevonden</h1>" in await missing.text()


async def test_the_language_switch_is_remembered(catalog: Any) -> None:
    client, _, _ = catalog
    html = await (await client.get("/", params={"q": "vergunning"})).text()
    # The switch keeps the page's own query.
    assert 'href="/?q=vergunning&amp;lang=nl"' in html and '<strong lang="en">English</strong>' in html
    chosen = await client.get(
        "/", params={"q": "vergunning", "lang": "nl"}, headers={"Accept-Language": "en"}
    )
    assert chosen.headers["Content-Language"] == "nl"
    assert chosen.cookies["lang"].value == "nl"
    # The cookie jar now holds the choice: the next page comes in Dutch, whatever the browser says.
    later = await client.get("/apis/parkeren", headers={"Accept-Language": "en"})
    assert later.headers["Content-Language"] == "nl" and "Laatst gecontroleerd" in await later.text()
    browse = await client.get("/api/browse/", headers={"Accept-Language": "en"})
    assert "gepubliceerde API's" in await browse.text()
    back = await client.get("/", params={"lang": "en"})
    assert back.headers["Content-Language"] == "en" and back.cookies["lang"].value == "en"
    # An unknown choice is no choice: the remembered one stays.
    assert (await client.get("/", params={"lang": "xx"})).headers["Content-Language"] == "en"


def test_every_word_of_the_pages_has_its_dutch_translation() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from catalog_service.pages import i18n

    pages = Path(i18n.__file__).parent
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    wanted = {message for _, _, message, _, _ in extract_from_dir(pages, method_map, options)}
    assert len(wanted) > 50
    with (pages / "translations" / "nl.po").open("rb") as po:
        catalog = read_po(po)
    untranslated = [
        message
        for message in wanted
        if (entry := catalog.get(message[0] if isinstance(message, tuple) else message)) is None
        or not all(entry.string if isinstance(entry.string, tuple) else [entry.string])
        or entry.fuzzy
    ]
    assert untranslated == []


async def test_the_owner_to_ask_comes_from_the_registration_and_from_the_document(catalog: Any) -> None:
    client, _, _ = catalog
    html = await (await client.get("/")).text()
    row = html.split('data-name="parkeren"')[1].split("</tr>")[0]
    assert '<a href="mailto:parkeren@example.org">Team Parkeren</a>' in row
    page = await (await client.get("/apis/parkeren")).text()
    assert 'href="https://example.org/parkeren"' in page


async def test_a_document_contact_link_a_browser_would_run_is_not_shown(
    collecting: TestClient, admin: dict[str, str], upstream: Any
) -> None:
    up, server = upstream
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "Sly",
            "version": "1",
            "contact": {
                "name": "Sly",
                "url": "javascript:alert(document.cookie)",
                "email": "sly@example.org",
            },
        },
        "paths": {},
    }
    await register(collecting, admin, "sly", str(server.make_url(up.serve("sly", document))))
    await collected(collecting, "sly")
    page = await (await collecting.get("/apis/sly")).text()
    assert "javascript:" not in page and '<a href="mailto:sly@example.org">Sly</a>' in page
