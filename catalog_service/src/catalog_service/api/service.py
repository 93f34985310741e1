"""The service itself: /api/health and /api/ui/ (in the spec), /metrics (outside it)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import Unavailable
from ..keys import LIVENESS, METRICS, POOL
from ..pages import SWAGGER_UI, render
from ..store import queue
from .problems import DATABASE_ERRORS

# What /api/health says while the service and its database answer.
HEALTHY = {"status": "ok", "database": "ok"}


async def health(request: web.Request) -> tuple[dict[str, str], int]:
    try:
        await request.config_dict[LIVENESS].check()
    except DATABASE_ERRORS:
        raise Unavailable("the database cannot be reached") from None
    return HEALTHY, 200


async def api_ui(request: web.Request) -> web.Response:
    """Swagger UI 5 over the service's own spec."""
    config = {"url": "/api/openapi.json", "deepLinking": True, "validatorUrl": None}
    return render("ui.html", request, {"config": config, "ui": SWAGGER_UI})


async def prometheus(request: web.Request) -> web.Response:
    metrics = request.config_dict[METRICS]
    depth = await queue.queue_depth(request.config_dict[POOL])
    body = (
        generate_latest(metrics.registry)
        + (
            "# HELP catalog_queue_depth Projects due for collection and not being collected\n"
            "# TYPE catalog_queue_depth gauge\n"
            f"catalog_queue_depth {depth}\n"
        ).encode()
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
