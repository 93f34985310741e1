"""Every route outside the /api spec, wired here and nowhere else."""

from __future__ import annotations

from aiohttp import web

from .api import discovery, service
from .pages import STATIC_FILES, SWAGGER_UI_FILES, views


def add_outside_routes(app: web.Application) -> None:
    app.router.add_get("/", views.index)
    app.router.add_get("/apis/{name}", views.api_page)
    app.router.add_get("/.well-known/api-catalog", discovery.api_catalog)
    app.router.add_get("/metrics", service.prometheus)
    app.router.add_static("/static", STATIC_FILES)
    # Swagger UI 5's files, for /api/ui/ and /api/browse/ (both routed by the spec).
    app.router.add_static("/swagger-ui", SWAGGER_UI_FILES)
