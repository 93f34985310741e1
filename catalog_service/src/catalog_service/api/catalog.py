"""The published catalog: /api/catalog…, /api/operations, /api/browse/."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import orjson
import yaml
from aiohttp import web

from ..keys import CATALOG_INDEX, OPERATION_INDEX, POOL, RESPONSE_CACHE
from ..metrics import operation_of
from ..pages import SWAGGER_UI, render
from ..response_cache import BUILT, CACHE_GENERATION, Cached, body_etag, etag_matches
from ..store import catalog as store
from ..urls import redacted
from . import iso
from .negotiation import ALTERNATIVES, YAML, negotiated

JSON = "application/json"
# Published documents change rarely; clients revalidate with the ETag after a minute.
DOCUMENT_CACHE_CONTROL = "public, max-age=60"


def links(name: str, swagger_url: str) -> dict[str, str]:
    return dict(_links(name, swagger_url))


@functools.lru_cache(maxsize=16384)
def _links(name: str, swagger_url: str) -> dict[str, str]:
    # Remembered: the same links for the same API on every page that lists it.
    quoted = quote(name)
    return {
        "self": f"/api/catalog/{quoted}",
        "openapi_json": f"/api/catalog/{quoted}/openapi.json",
        "openapi_yaml": f"/api/catalog/{quoted}/openapi.yaml",
        "browse": f"/api/browse/?{urlencode({'primaryName': name})}",
        "swagger_url": redacted(swagger_url),
    }


def entry_body(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "title": row["title"],
        "description": row["description"],
        "version": row["version"],
        "spec_format": row["spec_format"],
        "status": row["status"],
        "errors_count": row["errors_count"],
        "operations_count": row["operations_count"],
        "score": row["lint_score"],
        "tags": list(row["tags"]),
        "last_checked_at": iso(row["last_checked_at"]),
        "last_changed_at": iso(row["last_changed_at"]),
        "links": links(row["name"], row["swagger_url"]),
    }


def _not_modified(etag: str, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=304, headers={"ETag": etag, **(extra or {})})


def cache_key(request: web.Request) -> str:
    # The URL as sent: the same query in another order is merely another entry.
    return request.path_qs


def respond(request: web.Request, cached: Cached) -> web.Response:
    """The response for ``cached``: a 304 when the client holds it already."""
    extra = dict(cached.headers)
    content_type = cached.content_type
    media_type, _, parameters = content_type.partition(";")
    if media_type in ALTERNATIVES:
        content_type = negotiated(request, media_type) + (";" + parameters if parameters else "")
        extra["Vary"] = "Accept"
    if etag_matches(request, cached.etag):
        return _not_modified(cached.etag, extra)
    return web.Response(
        body=cached.body, headers={"ETag": cached.etag, "Content-Type": content_type, **extra}
    )


def remember(request: web.Request, cached: Cached) -> web.Response:
    # The generation the request began in (middlewares.cached_reads): a page built
    # across a change of the catalog is sent, not kept; the requests that waited for
    # this one take it all the same.
    request[BUILT] = cached
    request.config_dict[RESPONSE_CACHE].put(
        cache_key(request), cached, generation=request.get(CACHE_GENERATION), operation=operation_of(request)
    )
    return respond(request, cached)


Page = tuple[list[asyncpg.Record], int]


def _indexed_page(indexed: tuple[Sequence[bytes | memoryview], int], etag: str | None = None) -> Cached:
    """A page of items serialised already: the bytes orjson makes of {"items", "total"}.
    An item may be a run of several, commas between (indexes/catalog.py)."""
    items, total = indexed
    # One join, not a chain of +: each + copied the whole page again (33 µs against
    # 9 for a page of 100 entries); a page that is one run is copied once.
    joined = items[0] if len(items) == 1 else b",".join(items)
    body = b"".join((b'{"items":[', joined, b'],"total":', str(total).encode(), b"}"))
    return Cached(etag or body_etag(body), body, JSON)


async def _page(
    request: web.Request, search: list[str | None], query: Callable[[int | None], Awaitable[Page]]
) -> Page:
    """A page of a search, given the search's total when it is known: the total is
    remembered while the catalog is unchanged, so further pages cost one query."""
    cache = request.config_dict[RESPONSE_CACHE]
    key = json.dumps(search)
    rows, total = await query(cache.total(key))
    cache.keep_total(key, total, generation=request.get(CACHE_GENERATION))
    return rows, total


async def list_catalog(
    request: web.Request,
    q: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    min_score: int | None = None,
) -> web.Response:
    cache = request.config_dict[RESPONSE_CACHE]
    # Known without a query while the change listener is up: a 304 costs nothing...
    etag = cache.etag(cache_key(request))
    not_modified = etag if etag is not None and etag_matches(request, etag) else None
    if q is None:
        index = request.config_dict[CATALOG_INDEX]
        indexed = index.page(tag=tag, status=status, min_score=min_score, limit=limit, offset=offset)
        # Changes heard a moment ago and being read: the page is what the index holds
        # (dropped from the cache once they are read); further behind, it waits for
        # them, not for PostgreSQL.
        if indexed is None and (changes := index.nearly_current()) is not None:
            indexed = index.page(
                tag=tag, status=status, min_score=min_score, limit=limit, offset=offset, changes=changes
            )
        # ...but when the index has the page at once, it is kept, and the same 304
        # next time is answered before routing: a page the cache let go (older than
        # its MAX_AGE_SECONDS, or evicted) was answered the long way, through the
        # router and connexion, for every conditional request after it.
        if indexed is None and not_modified is not None:
            return _not_modified(not_modified)
        if indexed is None and (changes := await index.caught_up()) is not None:
            indexed = index.page(
                tag=tag, status=status, min_score=min_score, limit=limit, offset=offset, changes=changes
            )
        if indexed is not None:
            return remember(request, _indexed_page(indexed, etag))
    if not_modified is not None:
        return _not_modified(not_modified)
    rows, total = await _page(
        request,
        ["catalog", q, tag, status, str(min_score)],
        lambda known: store.list_entries(
            request.config_dict[POOL],
            q=q,
            tag=tag,
            status=status,
            min_score=min_score,
            limit=limit,
            offset=offset,
            known_total=known,
        ),
    )
    body = orjson.dumps({"items": [entry_body(r) for r in rows], "total": total})
    return remember(request, Cached(etag or body_etag(body), body, JSON))


async def get_catalog_entry(request: web.Request, name: str) -> dict[str, Any]:
    row, errors = await store.get_entry(request.config_dict[POOL], name=name)
    return {**entry_body(row), "validation_errors": errors}


async def get_lint_report(request: web.Request, name: str) -> dict[str, Any]:
    return await store.lint_report(request.config_dict[POOL], name=name)


async def _document(request: web.Request, name: str) -> tuple[str, str]:
    content_json, sha256 = await store.published_document(request.config_dict[POOL], name=name)
    return content_json, '"' + sha256.hex() + '"'


async def get_openapi_json(request: web.Request, name: str) -> web.Response:
    content_json, etag = await _document(request, name)
    return remember(
        request, Cached(etag, content_json.encode(), JSON, (("Cache-Control", DOCUMENT_CACHE_CONTROL),))
    )


def _to_yaml(content_json: str) -> bytes:
    document = json.loads(content_json)
    text: str = yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=120)
    return text.encode()


async def get_openapi_yaml(request: web.Request, name: str) -> web.Response:
    content_json, etag = await _document(request, name)
    # Another representation of the same version: its own validator, derived from the JSON one.
    etag = '"' + hashlib.sha256((etag + "yaml").encode()).hexdigest()[:32] + '"'
    if etag_matches(request, etag):
        return _not_modified(etag, {"Cache-Control": DOCUMENT_CACHE_CONTROL})
    # Serialising a large document takes a while: not on the event loop.
    body = await asyncio.to_thread(_to_yaml, content_json)
    return remember(
        request,
        Cached(etag, body, f"{YAML}; charset=utf-8", (("Cache-Control", DOCUMENT_CACHE_CONTROL),)),
    )


# A version never changes: a client may keep it for good.
VERSION_CACHE_CONTROL = "public, max-age=31536000, immutable"


async def _version(request: web.Request, name: str, sha256: str, media_type: str) -> web.Response:
    content_json = await store.published_version(
        request.config_dict[POOL], name=name, sha256=bytes.fromhex(sha256)
    )
    etag = '"' + hashlib.sha256((sha256 + media_type).encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": VERSION_CACHE_CONTROL}
    if etag_matches(request, etag):
        return web.Response(status=304, headers=headers)
    if media_type == YAML:
        body = await asyncio.to_thread(_to_yaml, content_json)
        content_type = negotiated(request, YAML) + "; charset=utf-8"
        headers["Vary"] = "Accept"
    else:
        body, content_type = content_json.encode(), JSON
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


async def get_version_json(request: web.Request, name: str, sha256: str) -> web.Response:
    return await _version(request, name, sha256, JSON)


async def get_version_yaml(request: web.Request, name: str, sha256: str) -> web.Response:
    return await _version(request, name, sha256, YAML)


async def list_versions(request: web.Request, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    rows, total = await store.list_versions(request.config_dict[POOL], name=name, limit=limit, offset=offset)
    items = [
        {
            "sha256": row["sha256"].hex(),
            "collected_at": iso(row["collected_at"]),
            "version": row["version"],
            "valid": row["valid"],
        }
        for row in rows
    ]
    return {"items": items, "total": total}


async def search_operations(
    request: web.Request,
    q: str | None = None,
    method: str | None = None,
    project: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> web.Response:
    # As for the catalog: known without a search while the change listener is up.
    etag = request.config_dict[RESPONSE_CACHE].etag(cache_key(request))
    if etag is not None and etag_matches(request, etag):
        return _not_modified(etag)
    indexed = await request.config_dict[OPERATION_INDEX].page(
        q=q, method=method, project=project, limit=limit, offset=offset
    )
    if indexed is not None:
        return remember(request, _indexed_page(indexed, etag))
    rows, total = await _page(
        request,
        ["operations", q, method, project],
        lambda known: store.search_operations(
            request.config_dict[POOL],
            q=q,
            method=method,
            project=project,
            limit=limit,
            offset=offset,
            known_total=known,
        ),
    )
    items = [
        {
            "project": row["project"],
            "method": row["method"],
            "path": row["path"],
            "operation_id": row["operation_id"],
            "summary": row["summary"],
            "deprecated": row["deprecated"],
        }
        for row in rows
    ]
    body = orjson.dumps({"items": items, "total": total})
    return remember(request, Cached(etag or body_etag(body), body, JSON))


async def browse(request: web.Request, primaryName: str | None = None) -> web.Response:  # noqa: N803 - Swagger UI's name
    apis = await store.published_names(request.config_dict[POOL])
    urls = [{"url": f"/api/catalog/{quote(row['name'])}/openapi.json", "name": row["name"]} for row in apis]
    names = {row["name"] for row in apis}
    primary = primaryName if primaryName in names else (apis[0]["name"] if apis else None)
    # Only the selected API's document is fetched: a large one never slows the others.
    config = {"urls": urls, "urls.primaryName": primary, "deepLinking": True, "validatorUrl": None}
    context = {"apis": apis, "config": config, "ui": SWAGGER_UI}
    return render("browse.html", request, context)
