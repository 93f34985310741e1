"""Registered projects."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Conflict, Forbidden, NotFound
from .db import Executor, page_total

PROJECT_COLUMNS = """
    id, name, swagger_url, title, description, tags, contact, owner, status,
    created_at, updated_at, last_checked_at, last_changed_at
"""

# The fields a PATCH may change; swagger_url first, so that it is always $2.
EDITABLE = ("swagger_url", "title", "description", "tags", "contact")


async def create_project(
    db: asyncpg.Pool,
    *,
    name: str,
    swagger_url: str,
    owner: str,
    title: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    contact: dict[str, Any] | None = None,
    max_owned: int | None = None,
) -> asyncpg.Record:
    """Register a project; ``max_owned`` caps how many ``owner`` may have (None: no cap)."""
    async with db.acquire() as conn, conn.transaction():
        if max_owned is not None:
            # One registration of this owner at a time: the count cannot race past the cap.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('owner:' || $1))", owner)
            owned = await conn.fetchval("SELECT count(*) FROM projects WHERE owner = $1", owner)
            if owned >= max_owned:
                raise Forbidden(
                    f"the token {owner!r} has registered {owned} projects, the most one token may "
                    "(CATALOG_MAX_PROJECTS_PER_TOKEN); delete one, or ask for an admin token"
                )
        return await _insert_project(
            conn,
            name=name,
            swagger_url=swagger_url,
            owner=owner,
            title=title,
            description=description,
            tags=tags,
            contact=contact,
        )


async def _insert_project(
    db: Executor,
    *,
    name: str,
    swagger_url: str,
    owner: str,
    title: str | None,
    description: str | None,
    tags: list[str] | None,
    contact: dict[str, Any] | None,
) -> asyncpg.Record:
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO projects (name, swagger_url, owner, title, description, tags, contact)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {PROJECT_COLUMNS}
            """,
            name,
            swagger_url,
            owner,
            title,
            description,
            tags or [],
            contact,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a project named {name!r} is registered already") from None
    assert row is not None
    return row


async def get_project(db: Executor, *, name: str) -> asyncpg.Record:
    row = await db.fetchrow(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE name = $1", name)
    if row is None:
        raise NotFound(f"no project named {name!r}")
    return row


async def list_projects(db: Executor, *, limit: int, offset: int) -> tuple[list[asyncpg.Record], int]:
    rows = await db.fetch(
        f"SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name LIMIT $1 OFFSET $2", limit, offset
    )
    total = await page_total(
        db, rows, limit=limit, offset=offset, count="SELECT count(*) FROM projects", args=[]
    )
    return rows, total


async def update_project(db: Executor, *, name: str, changes: dict[str, Any]) -> asyncpg.Record:
    """Apply ``changes`` (keys from EDITABLE); returns the updated row."""
    columns = [key for key in EDITABLE if key in changes]
    assignments = [f"{col} = ${i}" for i, col in enumerate(columns, start=2)]
    if "swagger_url" in changes:
        # Another URL: the old ETag means nothing there, and it is collected at once.
        assignments.append(
            "http_etag = CASE WHEN swagger_url IS DISTINCT FROM $2 THEN NULL ELSE http_etag END"
        )
        assignments.append(
            "http_last_modified = CASE WHEN swagger_url IS DISTINCT FROM $2 THEN NULL ELSE http_last_modified END"
        )
        assignments.append(
            "next_check_at = CASE WHEN swagger_url IS DISTINCT FROM $2 THEN now() ELSE next_check_at END"
        )
        assignments.append(
            "requested_trigger = CASE WHEN swagger_url IS DISTINCT FROM $2 THEN 'url-change' ELSE requested_trigger END"
        )
    values = [changes[col] if col != "tags" else (changes[col] or []) for col in columns]
    row = await db.fetchrow(
        f"""
        UPDATE projects SET {"".join(a + ", " for a in assignments)}updated_at = now()
        WHERE name = $1
        RETURNING {PROJECT_COLUMNS}
        """,
        name,
        *values,
    )
    if row is None:
        raise NotFound(f"no project named {name!r}")
    return row


async def delete_project(db: Executor, *, name: str) -> None:
    deleted = await db.fetchval("DELETE FROM projects WHERE name = $1 RETURNING id", name)
    if deleted is None:
        raise NotFound(f"no project named {name!r}")


async def all_names(db: Executor) -> list[str]:
    return [row["name"] for row in await db.fetch("SELECT name FROM projects ORDER BY name")]
