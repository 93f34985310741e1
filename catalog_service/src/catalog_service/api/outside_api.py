"""The routes that lie outside the /api spec, all wired here and nowhere else."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..keys import METRICS, POOL
from ..store import collector as queue
from .problems import Handler


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
        metrics = request.config_dict[METRICS]
        metrics.http_requests.labels(operation=operation, status=str(status)).inc()
        metrics.http_seconds.labels(operation=operation).observe(time.perf_counter() - began)


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
    app.router.add_get("/metrics", prometheus)


