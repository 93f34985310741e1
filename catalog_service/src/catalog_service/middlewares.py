"""The root app's middlewares besides problem+json: request metrics, and answers from
the response cache before connexion runs."""

from __future__ import annotations

import time

from aiohttp import web

from .api.catalog import cache_key, respond
from .api.problems import Handler
from .keys import METRICS, RESPONSE_CACHE

# Reads whose responses the catalog handlers cache (see response_cache).
CACHED_READS = ("/api/catalog", "/api/operations")
# The spec's maxLength of If-None-Match.
MAX_IF_NONE_MATCH = 1000


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
        cached = request.config_dict[RESPONSE_CACHE].get(cache_key(request))
        if cached is not None:
            return respond(request, cached)
    return await handler(request)
