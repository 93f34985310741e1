"""Changes between consecutive valid versions."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import NotFound
from .db import Executor, page_total


async def list_changes(
    db: Executor, *, project: str | None, breaking: bool, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    conditions: list[str] = []
    args: list[Any] = []
    if project is not None:
        project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project)
        if project_id is None:
            raise NotFound(f"no API named {project!r} in the catalog")
        args.append(project_id)
        conditions.append(f"c.project_id = ${len(args)}")
    if breaking:
        conditions.append("c.breaking")
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = await db.fetch(
        f"""
        SELECT c.id, p.name AS project, f.sha256 AS from_sha256, t.sha256 AS to_sha256,
               f.version AS from_version, t.version AS to_version,
               c.collected_at, c.breaking, c.changes
        FROM changes c
        JOIN projects p ON p.id = c.project_id
        JOIN documents f ON f.id = c.from_document_id
        JOIN documents t ON t.id = c.to_document_id
        {where}
        ORDER BY c.collected_at DESC, c.id DESC
        LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}
        """,
        *args,
        limit,
        offset,
    )
    count = f"SELECT count(*) FROM changes c {where}"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=args)


async def latest_per_project(db: Executor, *, names: list[str]) -> dict[str, asyncpg.Record]:
    """The newest change of each of these APIs (for the index page)."""
    rows = await db.fetch(
        """
        SELECT p.name, last.collected_at, last.breaking, last.changes
        FROM projects p
        JOIN LATERAL (
            SELECT c.collected_at, c.breaking, c.changes FROM changes c WHERE c.project_id = p.id
            ORDER BY c.collected_at DESC, c.id DESC LIMIT 1
        ) last ON true
        WHERE p.name = ANY($1::text[])
        """,
        names,
    )
    return {row["name"]: row for row in rows}
