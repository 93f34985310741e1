"""The routes that lie outside the /api spec, all wired here and nowhere else:
the human pages, RFC 9727 discovery, and Prometheus metrics."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import BadRequest
from ..keys import CATALOG_CACHE, METRICS, POOL, TEMPLATES
from ..store import catalog as store
from ..store import changes as changes_store
from ..store import collector as queue
from .catalog import cache_key, entry_body, respond
from .problems import Handler

PAGE_SIZE = 200
STATUSES = ("valid", "invalid", "unreachable", "pending")
LINKSET = 'application/linkset+json; profile="https://www.rfc-editor.org/info/rfc9727"'


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        operation = f"{request.method} {route.canonical}" if route is not None else "unmatched"
        request.config_dict[METRICS].observe_request(operation, str(status), time.perf_counter() - began)


# Reads whose responses the catalog handlers cache (see catalog.cache).
CACHED_READS = ("/api/catalog", "/api/operations")
# The spec's maxLength of If-None-Match.
MAX_IF_NONE_MATCH = 1000


@web.middleware
async def cached_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A read already served for this exact URL, since the catalog last changed."""
    # The URL was checked against the spec when its answer was cached; the one header
    # these reads take was not, so an overlong one goes the long way, to a 400.
    if (
        request.method == "GET"
        and request.path.startswith(CACHED_READS)
        and len(request.headers.get("If-None-Match", "")) <= MAX_IF_NONE_MATCH
    ):
        cached = request.config_dict[CATALOG_CACHE].get(cache_key(request))
        if cached is not None:
            return respond(request, cached)
    return await handler(request)


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    html = request.config_dict[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", headers={"Link": '</.well-known/api-catalog>; rel="api-catalog"'})


async def index(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()[:500] or None
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    try:
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        raise BadRequest("offset must be a whole number") from None
    pool = request.config_dict[POOL]
    # The same search as GET /api/catalog.
    rows, total = await store.list_entries(pool, q=q, tag=None, status=status, limit=PAGE_SIZE, offset=offset)
    more = None
    if offset + len(rows) < total:
        more = urlencode({k: v for k, v in {"q": q, "status": status, "offset": offset + PAGE_SIZE}.items() if v})
    entries = [entry_body(row) for row in rows]
    latest = await changes_store.latest_per_project(pool, names=[e["name"] for e in entries])
    return _render(
        request,
        "index.html",
        entries=entries,
        latest=latest,
        counts=await store.status_counts(pool),
        q=q,
        status=status,
        more=more,
    )


async def api_page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    pool = request.config_dict[POOL]
    row, errors = await store.get_entry(pool, name=name)
    collections, _ = await queue.list_collections(pool, name=name, limit=20, offset=0)
    history, _ = await changes_store.list_changes(pool, project=name, breaking=False, limit=50, offset=0)
    return _render(
        request, "api.html", e=entry_body(row), errors=errors, collections=collections, history=history
    )


async def api_catalog(request: web.Request) -> web.Response:
    """RFC 9727: a linkset of every published API, for generic discovery tools."""
    origin = f"{request.scheme}://{request.host}"
    apis = await store.published_names(request.config_dict[POOL])
    contexts: list[dict[str, Any]] = [
        {
            "anchor": f"{origin}/.well-known/api-catalog",
            "item": [{"href": f"{origin}/api/catalog/{quote(a['name'])}"} for a in apis],
        }
    ]
    for api in apis:
        quoted = quote(api["name"])
        entry = {
            "anchor": f"{origin}/api/catalog/{quoted}",
            "service-desc": [
                {"href": f"{origin}/api/catalog/{quoted}/openapi.json", "type": "application/json"},
                {"href": f"{origin}/api/catalog/{quoted}/openapi.yaml", "type": "application/yaml"},
            ],
            "service-doc": [
                {"href": f"{origin}/api/browse/?{urlencode({'primaryName': api['name']})}", "type": "text/html"}
            ],
        }
        if api["title"]:
            entry["service-desc"][0]["title"] = api["title"]
        contexts.append(entry)
    return web.Response(text=json.dumps({"linkset": contexts}), headers={"Content-Type": LINKSET})


async def prometheus(request: web.Request) -> web.Response:
    metrics = request.config_dict[METRICS]
    depth = await queue.queue_depth(request.config_dict[POOL])
    body = generate_latest(metrics.registry) + (
        "# HELP catalog_queue_depth Projects due for collection and not being collected\n"
        "# TYPE catalog_queue_depth gauge\n"
        f"catalog_queue_depth {depth}\n"
    ).encode()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/apis/{name}", api_page)
    app.router.add_get("/.well-known/api-catalog", api_catalog)
    app.router.add_get("/metrics", prometheus)
