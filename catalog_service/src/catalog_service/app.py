"""The app factory: the spec routes /api, aiohttp routes what lies outside it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import connexion
from aiohttp import web

from .api import outside_api, routing
from .api.outside_api import cached_reads, request_metrics
from .api.validation import VALIDATOR_MAP
from .api.problems import body_limit, domain_errors, outer_problems
from .collector.fetch import NetworkPolicy, create_session
from .collector.service import Collector
from .collector.workers import ValidatorPool
from .catalog import templates
from .catalog.cache import CatalogCache
from .keys import CATALOG_CACHE, COLLECTOR, FETCH_SESSION, METRICS, POOL, SETTINGS, TEMPLATES, VALIDATORS
from .metrics import Metrics
from .settings import Settings
from .spec import spec_path
from .store.db import create_pool, migrate

log = logging.getLogger(__name__)


def _database_ctx(settings: Settings):  # type: ignore[no-untyped-def]
    async def database(app: web.Application) -> AsyncIterator[None]:
        assert settings.database_url, "create_app needs a database URL"
        pool = await create_pool(settings.database_url)
        try:
            if settings.auto_migrate:
                async with pool.acquire() as conn:
                    await migrate(conn)
            app[POOL] = pool
            yield
        finally:
            await pool.close()

    return database


def _collector_ctx(settings: Settings, *, run_scheduler: bool, prestart: bool):  # type: ignore[no-untyped-def]
    async def collector(app: web.Application) -> AsyncIterator[None]:
        session = create_session(NetworkPolicy(settings.allowed_networks))
        validators = ValidatorPool(size=settings.workers, timeout=settings.validation_timeout)
        if prestart:
            validators.start()
        service = Collector(
            pool=app[POOL],
            settings=settings,
            session=session,
            validators=validators,
            metrics=app[METRICS],
        )
        app[FETCH_SESSION] = session
        app[VALIDATORS] = validators
        app[COLLECTOR] = service
        loop_task = asyncio.create_task(service.run(), name="collector") if run_scheduler else None
        try:
            yield
        finally:
            if loop_task is not None:
                loop_task.cancel()
                await asyncio.gather(loop_task, return_exceptions=True)
            await service.stop()
            await validators.close()
            await session.close()

    return collector


def _catalog_cache_ctx(settings: Settings):  # type: ignore[no-untyped-def]
    async def catalog_cache(app: web.Application) -> AsyncIterator[None]:
        assert settings.database_url
        cache = CatalogCache(settings.database_url)
        await cache.start()
        app[CATALOG_CACHE] = cache
        try:
            yield
        finally:
            await cache.close()

    return catalog_cache


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
        options={"swagger_ui": True, "middlewares": [body_limit, domain_errors]},
    )
    app: web.Application = cx.app
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TEMPLATES] = templates.environment()
    app.middlewares.append(request_metrics)
    app.middlewares.append(cached_reads)
    outside_api.add_routes(app)
    app.cleanup_ctx.append(_database_ctx(settings))
    app.cleanup_ctx.append(_catalog_cache_ctx(settings))
    app.cleanup_ctx.append(
        _collector_ctx(settings, run_scheduler=run_scheduler, prestart=prestart_validators)
    )
    return app
