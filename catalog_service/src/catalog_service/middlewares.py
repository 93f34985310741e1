"""The root app's middlewares besides problem+json (request metrics, reads answered
without connexion), answers from the response cache before anything else runs, and
the security headers every answer gets."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from connexion.apis.aiohttp_api import AioHttpApi
from multidict import CIMultiDict

from .api.catalog import cache_key, respond
from .api.negotiation import ALTERNATIVES
from .api.plain_queries import bearer_token
from .api.problems import Handler
from .api.service import HEALTHY
from .keys import LIVENESS, METRICS, PLAIN_CALLS, PLAIN_READS, RESPONSE_CACHE
from .metrics import operation_of
from .response_cache import BUILT, CACHE_GENERATION, Cached, ResponseCache, etag_matches
from .spec import api_version

# Reads whose responses the catalog handlers cache (see response_cache).
CACHED_READS = ("/api/catalog", "/api/operations")
# The health check, answered first while the database's last answer is trusted.
HEALTH = "/api/health"
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
        request.config_dict[METRICS].observe_request(
            operation_of(request), str(status), time.perf_counter() - began
        )


def _cacheable(request: web.Request) -> bool:
    # The URL was checked against the spec when its answer was cached; the one header
    # these reads take was not, so an overlong one goes the long way, to a 400.
    return (
        request.method == "GET"
        and request.path.startswith(CACHED_READS)
        and len(request.headers.get("If-None-Match", "")) <= MAX_IF_NONE_MATCH
    )


def answer_cached_reads_first(app: web.Application) -> None:
    """A read already served for this exact URL since the catalog last changed is
    answered before aiohttp routes the request: no router, no middleware, no signal.
    So is a health check while the database's last answer is trusted (store.db.Liveness).

    Routing through the root app and connexion's sub-app, three middlewares and the
    response-prepare signal were most of a cached read's own cost, and twice that of a
    health check's, which probes from every load balancer and orchestrator repeat
    all day. The answer gets what they would have given it: the security headers of
    data, and its line in the request metrics (the access line is the server's, as
    for every request). aiohttp has no hook before routing: its server calls the
    app's ``_handle``, wrapped here.
    """
    route = app._handle
    requests = app[METRICS].requests
    # What security_headers gives an answer of the API that is not a page.
    data_headers = (*EVERY_ANSWER, ("API-Version", api_version()), ("Content-Security-Policy", DATA_POLICY))
    # The health check's answer as connexion serialises the handler's.
    healthy = AioHttpApi.jsonifier.dumps(HEALTHY).encode()
    healthy_headers = CIMultiDict((("Content-Type", "application/json; charset=utf-8"), *data_headers))

    def answer(request: web.Request, cached: Cached) -> web.Response:
        # The headers of its two answers, a 304 and a 200, made once for the entry:
        # building them for every 304 was 6% of its instructions (callgrind, in serve).
        if not cached.prepared:
            if cached.content_type.partition(";")[0] in ALTERNATIVES:
                cached.prepared.append(None)  # its Content-Type is the client's to choose
            else:
                common = (("ETag", cached.etag), *cached.headers, *data_headers)
                cached.prepared.append(
                    (CIMultiDict(common), CIMultiDict((("Content-Type", cached.content_type), *common)))
                )
        prepared = cached.prepared[0]
        if prepared is None:
            response = respond(request, cached)
            response.headers.extend(data_headers)
            return response
        if etag_matches(request, cached.etag):
            return web.Response(status=304, headers=prepared[0])
        return web.Response(body=cached.body, headers=prepared[1])

    async def front(request: web.Request) -> web.StreamResponse:
        if _cacheable(request):
            began = time.perf_counter()
            cached = app[RESPONSE_CACHE].get(cache_key(request))
            if cached is not None:
                response = answer(request, cached)
                requests.observe(cached.operation, str(response.status), time.perf_counter() - began)
                return response
        elif request.path == HEALTH and request.method == "GET" and app[LIVENESS].trusted:
            began = time.perf_counter()
            response = web.Response(body=healthy, headers=healthy_headers)
            requests.observe(f"GET {HEALTH}", "200", time.perf_counter() - began)
            return response
        return await route(request)

    app._handle = front  # type: ignore[method-assign]


@web.middleware
async def cached_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A read not in the response cache: the cache's generation noted (a page built
    across a change is not kept), and, when its query is plainly valid, the handler
    called without connexion (api/plain_queries), once for all the requests asking
    for the same page at the same time."""
    if _cacheable(request):
        cache = request.config_dict[RESPONSE_CACHE]
        request[CACHE_GENERATION] = cache.generation
        read = request.config_dict[PLAIN_READS].get(request.path)
        if read is not None and (arguments := read.arguments(request.query)) is not None:
            return await _built_once(request, cache, functools.partial(read.handler, request, **arguments))
    return await handler(request)


async def _built_once(
    request: web.Request, cache: ResponseCache, build: Callable[[], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The page ``build`` makes, built once for every request that asks for it while
    it is being built in the same generation: under a large ingestion every change
    empties the cache, and ten readers of one page each ran its queries on a database
    busy storing documents. A request arriving after a change builds its own."""
    key = (request[CACHE_GENERATION], cache_key(request))
    building = cache.building.get(key)
    if building is not None:
        # Shielded: a reader that goes away takes nothing from the one building.
        cached = await asyncio.shield(building)
        return respond(request, cached) if cached is not None else await build()
    future: asyncio.Future[Cached | None] = asyncio.get_running_loop().create_future()
    cache.building[key] = future
    try:
        return await build()
    finally:
        del cache.building[key]
        # None when it failed, or answered without a page (the others build their own).
        future.set_result(request.get(BUILT))


@web.middleware
async def plain_calls(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A call whose path and token are plainly valid, made without connexion's
    decorators (api/plain_queries). The innermost of the API's middlewares: rate
    limits, body checks and errors in words apply as on the long way."""
    resource = request.match_info.route.resource
    call = request.config_dict[PLAIN_CALLS].get((request.method, resource.canonical)) if resource else None
    if call is not None and not request.query_string and not request.body_exists:
        arguments = call.arguments(request.match_info)
        token = bearer_token(request.headers)
        if (
            arguments is not None
            and token is not None
            and (info := await call.identify(token, request)) is not None
        ):
            # What connexion's security check leaves for the handler.
            request["user"] = info.get("sub")
            request["token_info"] = info
            response: web.StreamResponse = await AioHttpApi.get_response(
                await call.handler(request, **arguments), mimetype=call.mimetype
            )
            return response
    return await handler(request)


# Inline scripts of a page: allowed by their hash, never wholesale.
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
# What every answer may do in a browser. Pages: scripts only from here (or hashed),
# images only from here or data: URLs (a document's <img src=...> cannot make a
# reader's browser call another host), no framing anywhere.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Headers every answer gets, page or data.
EVERY_ANSWER = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def _script_hashes(body: bytes) -> str:
    digests = {
        base64.b64encode(hashlib.sha256(script).digest()).decode() for script in _INLINE_SCRIPT.findall(body)
    }
    return "".join(f" 'sha256-{digest}'" for digest in sorted(digests))


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, pages, JSON and errors alike, right before it
    is sent."""
    for name, value in EVERY_ANSWER:
        response.headers.setdefault(name, value)
    if request.path.startswith("/api"):
        # The NLGov API Design Rules: every answer of an API says which version it is.
        response.headers.setdefault("API-Version", api_version())
    if response.content_type == "text/html":
        body = response.body if isinstance(response, web.Response) else None
        hashes = _script_hashes(body) if isinstance(body, bytes) else ""
        response.headers["Content-Security-Policy"] = PAGE_POLICY.format(hashes=hashes)
    else:
        response.headers.setdefault("Content-Security-Policy", DATA_POLICY)
