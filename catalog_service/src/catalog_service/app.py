"""The app factory: the spec routes /api, aiohttp routes what lies outside it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import connexion
from aiohttp import web

from .api.problems import body_limit, domain_errors, outer_problems
from .keys import POOL, SETTINGS
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


def create_app(settings: Settings, *, validate_responses: bool = False) -> web.Application:
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
        options={"swagger_ui": True, "middlewares": [body_limit, domain_errors]},
    )
    app: web.Application = cx.app
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database_ctx(settings))
    return app
