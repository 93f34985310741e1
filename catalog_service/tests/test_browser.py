"""A real browser opens the pages: what a person sees is what the tests assert."""

from __future__ import annotations

import copy
import re
from typing import Any

from .browser import rendered_dom, screenshot
from .conftest import ARTIFACTS, collected, register
from .test_bundles import original, serve_split
from .upstream import PARKEREN


async def test_the_index_page_renders_every_api_in_a_browser(catalog: Any) -> None:
    client, _, _ = catalog
    url = str(client.make_url("/"))
    dom = await rendered_dom(url)
    for title in ["Afvalcontainers", "Parkeervergunningen", "City weather", "broken"]:
        assert title in dom
    assert re.search(r'class="badge invalid">invalid<', dom)
    await screenshot(url, ARTIFACTS / "screenshots" / "index.png")
    await screenshot(url, ARTIFACTS / "screenshots" / "index-phone.png", width=390, height=1200)


async def test_swagger_ui_opens_the_chosen_api_with_a_selector_over_all(catalog: Any) -> None:
    client, _, _ = catalog
    url = str(client.make_url("/api/browse/?primaryName=parkeren"))
    dom = await rendered_dom(url)
    # The chosen API is rendered: its title and every operation.
    assert "Parkeervergunningen" in dom
    for summary in ["Zoek vergunningen", "Vraag een vergunning aan", "Trek een vergunning in"]:
        assert summary in dom
    assert 'data-path="/vergunningen/{id}"' in dom or "/vergunningen/{id}" in dom
    # The selector offers every published API (the broken one has nothing to show).
    options = set(re.findall(r"<option[^>]*>([^<]+)</option>", dom))
    assert {"afval", "parkeren", "weather"} <= options and "broken" not in options
    # Only the chosen API's operations are on the page.
    assert "Latest temperature readings" not in dom
    await screenshot(url, ARTIFACTS / "screenshots" / "browse-parkeren.png")
    await screenshot(url, ARTIFACTS / "screenshots" / "browse-parkeren-phone.png", width=390, height=1400)


async def test_swagger_ui_5_shows_openapi_3_1_3_0_and_swagger_2_0_alike(catalog: Any) -> None:
    client, _, _ = catalog
    for name, title, operation in [
        ("weather", "City weather", "Latest temperature readings of a station"),  # OpenAPI 3.1
        ("parkeren", "Parkeervergunningen", "Zoek vergunningen"),  # OpenAPI 3.0
        ("afval", "Afvalcontainers", "Alle containers"),  # Swagger 2.0
    ]:
        url = str(client.make_url(f"/api/browse/?primaryName={name}"))
        dom = await rendered_dom(url)
        assert "Unable to render this definition" not in dom, name
        assert title in dom and operation in dom, name
        await screenshot(url, ARTIFACTS / "screenshots" / f"browse-{name}.png")


async def test_the_service_shows_its_own_spec_in_swagger_ui_5(client: Any) -> None:
    url = str(client.make_url("/api/ui/"))
    dom = await rendered_dom(url)
    assert "catalog-service" in dom and "Register a project" in dom
    bundle = await (await client.get("/swagger-ui/swagger-ui-bundle.js")).read()
    assert b"5.34" in bundle or b'"5.' in bundle
    await screenshot(url, ARTIFACTS / "screenshots" / "api-ui.png")
    await screenshot(url, ARTIFACTS / "screenshots" / "api-ui-phone.png", width=390, height=1400)


async def test_the_page_of_an_api_shows_its_operations_and_versions_at_both_widths(catalog: Any) -> None:
    client, _, _ = catalog
    url = str(client.make_url("/apis/parkeren"))
    dom = await rendered_dom(url)
    assert "Zoek vergunningen" in dom and "Versions (1)" in dom and "Operations (3)" in dom
    await screenshot(url, ARTIFACTS / "screenshots" / "api-parkeren.png")
    await screenshot(url, ARTIFACTS / "screenshots" / "api-parkeren-phone.png", width=390, height=1800)
    broken = str(client.make_url("/apis/broken"))
    await screenshot(broken, ARTIFACTS / "screenshots" / "api-broken-phone.png", width=390, height=1800)
    # An unknown name: a page a person can read, at both widths.
    missing = str(client.make_url("/apis/no-such-api"))
    dom = await rendered_dom(missing)
    assert "<h1>Not Found</h1>" in dom and 'href="/"' in dom
    await screenshot(missing, ARTIFACTS / "screenshots" / "not-found.png", height=600)
    await screenshot(missing, ARTIFACTS / "screenshots" / "not-found-phone.png", width=390, height=800)


async def test_a_dutch_browser_gets_the_pages_in_dutch_at_both_widths(catalog: Any) -> None:
    client, _, _ = catalog
    index = str(client.make_url("/"))
    dom = await rendered_dom(index, lang="nl-NL,nl")
    assert '<html lang="nl">' in dom and "API-catalogus" in dom
    assert re.search(r'class="badge invalid">ongeldig<', dom)
    await screenshot(index, ARTIFACTS / "screenshots" / "index-nl.png", lang="nl-NL,nl")
    await screenshot(
        index, ARTIFACTS / "screenshots" / "index-nl-phone.png", width=390, height=1200, lang="nl"
    )
    page = str(client.make_url("/apis/parkeren"))
    assert "Versies (1)" in await rendered_dom(page, lang="nl")
    await screenshot(page, ARTIFACTS / "screenshots" / "api-parkeren-nl.png", lang="nl")
    await screenshot(
        page, ARTIFACTS / "screenshots" / "api-parkeren-nl-phone.png", width=390, height=1800, lang="nl"
    )


async def test_swagger_ui_shows_a_document_bundled_from_many_files(
    collecting: Any, admin: dict[str, str], upstream: Any
) -> None:
    up, server = upstream
    url = serve_split(up, server, "chat", original("twilio.com__twilio_chat_v2.yaml"))
    await register(collecting, admin, "chat", url)
    assert (await collected(collecting, "chat"))["status"] == "valid"
    page = str(collecting.make_url("/api/browse/?primaryName=chat"))
    dom = await rendered_dom(page)
    assert "Unable to render this definition" not in dom
    assert "/v2/Services/{ServiceSid}/Channels" in dom
    await screenshot(page, ARTIFACTS / "screenshots" / "browse-bundled.png")


async def test_the_history_of_an_api_shows_each_change_by_operation_with_its_level(
    catalog: Any, admin: dict[str, str]
) -> None:
    client, up, _ = catalog
    revised = copy.deepcopy(PARKEREN)
    revised["info"]["version"] = "3.0.0"
    del revised["paths"]["/vergunningen"]["post"]
    revised["paths"]["/vergunningen"]["get"]["parameters"] = [
        {"name": "wijk", "in": "query", "required": True, "schema": {"type": "string"}}
    ]
    up.serve("parkeren", revised)
    before = (await (await client.get("/api/projects/parkeren")).json())["last_checked_at"]
    assert (await client.post("/api/projects/parkeren/refresh", headers=admin)).status == 202
    await collected(client, "parkeren", after=before)
    url = str(client.make_url("/apis/parkeren#changes"))
    dom = await rendered_dom(url)
    # One heading per operation, each sentence with its level and oasdiff's rule id.
    assert '<p class="about"><code>GET /vergunningen</code></p>' in dom
    assert '<p class="about"><code>POST /vergunningen</code></p>' in dom
    assert re.search(
        r'class="badge breaking">breaking</span> the required query parameter .wijk. was added', dom
    )
    assert "new-required-request-parameter" in dom and "api-removed-without-deprecation" in dom
    page = str(client.make_url("/apis/parkeren"))
    await screenshot(page, ARTIFACTS / "screenshots" / "api-parkeren-changes.png", height=2200)
    await screenshot(
        page, ARTIFACTS / "screenshots" / "api-parkeren-changes-phone.png", width=390, height=3800
    )
    dutch = await rendered_dom(url, lang="nl")
    assert "De hele API" in dutch and 'class="badge breaking">brekend</span>' in dutch
