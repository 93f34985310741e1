"""Registration: /api/projects."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from ..keys import COLLECTOR, POOL, SETTINGS
from ..store import projects as store
from ..store import queue
from ..urls import checked_swagger_url, redacted
from . import iso
from .auth import caller, require_owner


def project_body(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "name": row["name"],
        # Reads are public: credentials in the URL are not shown.
        "swagger_url": redacted(row["swagger_url"]),
        "title": row["title"],
        "description": row["description"],
        "tags": list(row["tags"]),
        "contact": row["contact"],
        "owner": row["owner"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "last_checked_at": iso(row["last_checked_at"]),
        "last_changed_at": iso(row["last_changed_at"]),
    }


async def create_project(request: web.Request, body: dict[str, Any]) -> tuple[Any, int, dict[str, str]]:
    owner = caller(request)
    row = await store.create_project(
        request.config_dict[POOL],
        name=body["name"],
        swagger_url=checked_swagger_url(body["swagger_url"]),
        owner=owner.name,
        title=body.get("title"),
        description=body.get("description"),
        tags=body.get("tags"),
        contact=body.get("contact"),
        max_owned=None if owner.admin else request.config_dict[SETTINGS].max_projects_per_token,
    )
    # The new row is due at once; this replica looks now rather than at its next poll.
    request.config_dict[COLLECTOR].wake()
    location = f"/api/projects/{row['name']}"
    return project_body(row), 201, {"Location": location}


async def list_projects(request: web.Request, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    rows, total = await store.list_projects(request.config_dict[POOL], limit=limit, offset=offset)
    return {"items": [project_body(row) for row in rows], "total": total}


async def get_project(request: web.Request, name: str) -> dict[str, Any]:
    return project_body(await store.get_project(request.config_dict[POOL], name=name))


async def update_project(request: web.Request, name: str, body: dict[str, Any]) -> dict[str, Any]:
    pool = request.config_dict[POOL]
    current = await store.get_project(pool, name=name)
    require_owner(request, current["owner"])
    changes = {key: value for key, value in body.items() if key in store.EDITABLE}
    if "swagger_url" in changes:
        changes["swagger_url"] = checked_swagger_url(changes["swagger_url"])
    row = await store.update_project(pool, name=name, changes=changes)
    if changes.get("swagger_url", current["swagger_url"]) != current["swagger_url"]:
        request.config_dict[COLLECTOR].wake()
    return project_body(row)


async def delete_project(request: web.Request, name: str) -> tuple[None, int]:
    pool = request.config_dict[POOL]
    current = await store.get_project(pool, name=name)
    require_owner(request, current["owner"])
    await store.delete_project(pool, name=name)
    return None, 204


async def refresh_project(request: web.Request, name: str) -> tuple[dict[str, Any], int]:
    pool = request.config_dict[POOL]
    identity = caller(request)
    # One round trip when the caller may: the collection is requested only for the
    # project's owner (or an admin); else a read of the project tells a 403 from a 404.
    owner = None if identity.admin else identity.name
    current = await queue.request_collection(pool, name=name, trigger="refresh", owner=owner)
    while current is None:
        require_owner(request, (await store.get_project(pool, name=name))["owner"])
        # There now, and the caller's (created or handed over meanwhile): asked again.
        current = await queue.request_collection(pool, name=name, trigger="refresh", owner=owner)
    request.config_dict[COLLECTOR].wake()
    return project_body(current), 202


async def list_collections(
    request: web.Request, name: str, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    rows, total = await queue.list_collections(
        request.config_dict[POOL], name=name, limit=limit, offset=offset
    )
    items = [
        {
            "started_at": iso(row["started_at"]),
            "finished_at": iso(row["finished_at"]),
            "http_status": row["http_status"],
            "outcome": row["outcome"],
            "error": row["error"],
            "trigger": row["trigger"],
        }
        for row in rows
    ]
    return {"items": items, "total": total}
