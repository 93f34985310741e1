"""The human pages: the index of every API, and the page of one."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from ..api.catalog import entry_body
from ..api.problems import DATABASE_ERRORS
from ..compare import by_operation, normalized
from ..domain import STATUSES
from ..errors import BadRequest, CatalogError, NotFound
from ..keys import POOL
from ..pointers import unescape
from ..store import catalog as store
from ..store import changes as changes_store
from ..store import queue
from . import render

PAGE_SIZE = 200
MAX_OPERATIONS_SHOWN = 1000
# The spec's bounds for offsets and names, kept by the pages too.
MAX_OFFSET = 2_147_483_647
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")

PageHandler = Callable[[web.Request], Awaitable[web.Response]]


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    response = render(template, request, context)
    response.headers["Link"] = '</.well-known/api-catalog>; rel="api-catalog"'
    return response


def html_errors(handler: PageHandler) -> PageHandler:
    """A page's errors are pages too: a person's browser gets HTML, not problem+json."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except CatalogError as exc:
            status, title, detail = exc.status, exc.title, exc.detail
        except DATABASE_ERRORS:
            status, title, detail = (
                503,
                "Service Unavailable",
                "the database cannot be reached; try again shortly",
            )
        response = render("error.html", request, {"title": title, "detail": detail})
        response.set_status(status)
        return response

    return page


def _text_parameter(request: web.Request, name: str, *, max_length: int) -> str | None:
    value = request.query.get(name, "").strip()
    if "\x00" in value:
        raise BadRequest(f"{name} must not contain a NUL character")
    return value[:max_length] or None


@html_errors
async def index(request: web.Request) -> web.Response:
    q = _text_parameter(request, "q", max_length=500)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    raw_offset = request.query.get("offset", "0")
    if not raw_offset.isdigit() or int(raw_offset) > MAX_OFFSET:
        raise BadRequest(f"offset must be a whole number from 0 to {MAX_OFFSET}")
    offset = int(raw_offset)
    tag = _text_parameter(request, "tag", max_length=64)
    raw_score = request.query.get("min_score") or None
    if raw_score is not None and not (raw_score.isdigit() and int(raw_score) <= 100):
        raise BadRequest("min_score must be a whole number from 0 to 100")
    min_score = int(raw_score) if raw_score is not None else None
    sort = request.query.get("sort") or "name"
    if sort not in store.SORTS:
        raise BadRequest(f"sort must be one of {', '.join(store.SORTS)}")
    pool = request.config_dict[POOL]
    # The same search as GET /api/catalog.
    rows, total = await store.list_entries(
        pool, q=q, tag=tag, status=status, limit=PAGE_SIZE, offset=offset, sort=sort, min_score=min_score
    )
    chosen = {
        "q": q,
        "tag": tag,
        "status": status,
        "min_score": raw_score,
        "sort": None if sort == "name" else sort,
    }
    more = None
    if offset + len(rows) < total:
        more = urlencode({k: v for k, v in {**chosen, "offset": offset + PAGE_SIZE}.items() if v})
    entries = [entry_body(row) | {"owner": row["owner"], "contact": _contact(row)} for row in rows]
    latest = await changes_store.latest_per_project(pool, names=[e["name"] for e in entries])
    return _render(
        request,
        "index.html",
        entries=entries,
        latest=latest,
        counts=await store.status_counts(pool),
        q=q,
        status=status,
        tag=tag,
        min_score=min_score,
        sort=sort,
        sorts=list(store.SORTS),
        total=total,
        sorted_by={
            name: urlencode({k: v for k, v in {**chosen, "sort": name}.items() if v}) for name in store.SORTS
        },
        more=more,
    )


def _contact(row: Any) -> dict[str, str]:
    """Who to ask about an API: the registration's contact, completed by what the
    published document's info.contact says."""
    found: dict[str, str] = {}
    for contact in (row["contact"], row["document_contact"]):
        if isinstance(contact, dict):
            for key in ("team", "name", "email", "url"):
                if isinstance(contact.get(key), str) and contact[key] and key not in found:
                    found[key] = contact[key]
    return found


@html_errors
async def api_page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not PROJECT_NAME.fullmatch(name):
        raise NotFound(f"there is no API named {name!r}: names are lowercase letters, digits and '-'")
    pool = request.config_dict[POOL]
    row, errors = await store.get_entry(pool, name=name)
    collections, _ = await queue.list_collections(pool, name=name, limit=20, offset=0)
    history, _ = await changes_store.list_changes(pool, project=name, breaking=False, limit=50, offset=0)
    operations, _ = await store.search_operations(
        pool, q=None, method=None, project=name, limit=MAX_OPERATIONS_SHOWN, offset=0
    )
    versions, _ = await store.list_versions(pool, name=name, limit=50, offset=0)
    _, lint = await store.published_lint(pool, name=name)
    return _render(
        request,
        "api.html",
        e=entry_body(row) | {"owner": row["owner"], "contact": _contact(row)},
        errors=errors,
        collections=collections,
        history=[dict(h) | {"groups": by_operation([normalized(c) for c in h["changes"]])} for h in history],
        operations=operations,
        versions=[dict(v) | {"sha": v["sha256"].hex()} for v in versions],
        lint=lint
        and lint | {"findings": [f | {"place": _place(name, f["path"])} for f in lint.get("findings", [])]},
    )


_OPERATION = re.compile(r"/paths/([^/]+)/(get|put|post|delete|options|head|patch|trace)(?:/|$)")


def _place(name: str, pointer: str) -> str:
    """Where a finding is: the operation on this page, else its place in the JSON
    document (a JSON pointer as the fragment, RFC 6901)."""
    operation = _OPERATION.match(pointer)
    if operation:
        path = unescape(operation.group(1))
        return "#" + quote(f"op-{operation.group(2)}-{path}", safe="/{}-")
    return f"/api/catalog/{quote(name)}/openapi.json#" + quote(pointer, safe="/~")
