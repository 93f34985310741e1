"""The app factory: the spec routes /api, aiohttp routes what lies outside it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import connexion
from aiohttp import web

from .api import ratelimit, routing
from .api.catalog import entry_body
from .api.plain_queries import plain_calls as calls_of
from .api.plain_queries import plain_reads
from .api.problems import body_limit, domain_errors, outer_problems
from .api.ratelimit import rate_limits
from .api.validation import VALIDATOR_MAP
from .collector.service import open_collector
from .indexes.catalog import CatalogIndex
from .indexes.operations import OperationIndex
from .keys import (
    ASSEMBLY,
    BACKGROUND_POOL,
    CATALOG_INDEX,
    COLLECTOR,
    LIVENESS,
    METRICS,
    OPERATION_INDEX,
    PLAIN_CALLS,
    PLAIN_READS,
    POOL,
    RESPONSE_CACHE,
    SETTINGS,
    WEBHOOKS,
    Assembly,
)
from .metrics import Metrics
from .middlewares import (
    answer_cached_reads_first,
    cached_reads,
    plain_calls,
    request_metrics,
    security_headers,
)
from .pages import setup_templates
from .response_cache import MAX_AGE_SECONDS, ResponseCache
from .routes import add_outside_routes
from .settings import Settings
from .spec import spec_document, spec_path
from .store.db import Liveness, close_pool, create_pool, migrate
from .webhooks.delivery import open_deliverer


def _database_url(app: web.Application) -> str:
    url = app[SETTINGS].database_url
    if not url:
        raise RuntimeError("create_app needs settings with a database_url")
    return url


async def database(app: web.Application) -> AsyncIterator[None]:
    """The connection pools, the requests' and the background work's; pending
    migrations first, unless CATALOG_AUTO_MIGRATE=false."""
    pool = await create_pool(_database_url(app))
    try:
        if app[SETTINGS].auto_migrate:
            async with pool.acquire() as conn:
                await migrate(conn)
        # Each collection may hold one while it stores, besides claims, heartbeats
        # and the webhook sender.
        background = await create_pool(_database_url(app), max_size=app[SETTINGS].collect_concurrency + 3)
        try:
            app[POOL], app[BACKGROUND_POOL] = pool, background
            app[LIVENESS] = Liveness(pool)
            yield
        finally:
            await close_pool(background)
    finally:
        await close_pool(pool)


async def response_cache(app: web.Application) -> AsyncIterator[None]:
    """Cached reads, dropped on every catalog_changed notification."""
    cache = ResponseCache(_database_url(app))
    await cache.start()
    app[RESPONSE_CACHE] = cache
    try:
        yield
    finally:
        await cache.close()


async def indexes(app: web.Application) -> AsyncIterator[None]:
    """Every catalog entry and every published operation in memory, kept as current
    as the response cache."""
    catalog = CatalogIndex(app[POOL], app[RESPONSE_CACHE], entry_body, max_age=MAX_AGE_SECONDS)
    operations = OperationIndex(app[POOL], app[RESPONSE_CACHE], max_age=MAX_AGE_SECONDS)
    for index in (catalog, operations):
        await index.start()
    app[CATALOG_INDEX], app[OPERATION_INDEX] = catalog, operations
    try:
        yield
    finally:
        for index in (catalog, operations):
            await index.close()


async def collector(app: web.Application) -> AsyncIterator[None]:
    """The collector, and (unless switched off) its scheduling loop."""
    assembly = app[ASSEMBLY]
    async with open_collector(
        app[BACKGROUND_POOL], app[SETTINGS], app[METRICS], prestart=assembly.prestart_validators
    ) as service:
        app[COLLECTOR] = service
        loop = asyncio.create_task(service.run(), name="collector") if assembly.run_scheduler else None
        try:
            yield
        finally:
            if loop is not None:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop


async def webhooks(app: web.Application) -> AsyncIterator[None]:
    """The webhook outbox's sender, under the collector's replica name (its heartbeat
    keeps the leases on deliveries alive); woken by the collector's events."""
    collector = app[COLLECTOR]
    async with open_deliverer(
        app[BACKGROUND_POOL],
        app[SETTINGS],
        app[METRICS],
        replica=collector.replica,
        run=app[ASSEMBLY].run_scheduler,
    ) as deliverer:
        app[WEBHOOKS] = deliverer
        collector.on_events = deliverer.wake
        try:
            yield
        finally:
            collector.on_events = None


def create_app(
    settings: Settings,
    *,
    validate_responses: bool = False,
    run_scheduler: bool = True,
    prestart_validators: bool = True,
) -> web.Application:
    spec = spec_path()
    cx = connexion.AioHttpApp(
        __name__,
        specification_dir=str(spec.parent),
        only_one_api=False,
        server_args={
            "middlewares": [outer_problems],
            # Raw documents posted to /api/validate may be this large; every other
            # route is held to a small body by the body_limit middleware.
            "client_max_size": settings.max_spec_bytes + 64 * 1024,
        },
    )
    cx.add_api(
        spec.name,
        base_path="/api",
        pass_context_arg_name="request",
        strict_validation=True,
        validate_responses=validate_responses,
        resolver=routing.resolver(),
        validator_map=VALIDATOR_MAP,
        # connexion 2 bundles Swagger UI 4, which cannot show OpenAPI 3.1: the service
        # serves Swagger UI 5 itself (GET /api/ui/ in the spec, its files in routes.py).
        options={"swagger_ui": False, "middlewares": [domain_errors, rate_limits, body_limit, plain_calls]},
    )
    app: web.Application = cx.app
    app[SETTINGS] = settings
    app[ASSEMBLY] = Assembly(run_scheduler=run_scheduler, prestart_validators=prestart_validators)
    app[METRICS] = Metrics()
    app[PLAIN_READS] = plain_reads(spec_document(), "/api", routing.handler)
    app[PLAIN_CALLS] = calls_of(spec_document(), "/api", routing.handler)
    ratelimit.setup(app, write_rate=settings.write_rate, check_rate=settings.anonymous_validate_rate)
    setup_templates(app)
    app.middlewares.append(request_metrics)
    app.middlewares.append(cached_reads)
    app.on_response_prepare.append(security_headers)
    answer_cached_reads_first(app)
    add_outside_routes(app)
    app.cleanup_ctx.extend([database, response_cache, indexes, collector, webhooks])
    return app
