"""The human pages: the index of every API, and the page of one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..api.catalog import entry_body
from ..domain import STATUSES
from ..errors import BadRequest
from ..keys import POOL
from ..store import catalog as store
from ..store import changes as changes_store
from ..store import queue
from . import render

PAGE_SIZE = 200


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    response = render(template, request, context)
    response.headers["Link"] = '</.well-known/api-catalog>; rel="api-catalog"'
    return response


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
        more = urlencode(
            {k: v for k, v in {"q": q, "status": status, "offset": offset + PAGE_SIZE}.items() if v}
        )
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
