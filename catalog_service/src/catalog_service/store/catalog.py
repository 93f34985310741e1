"""What is published: catalog entries, documents, versions, operations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from ..errors import NotFound
from .db import Executor, page_total

# Only small columns of documents: the raw bytes and parsed JSON stay on disk.
_ENTRY = """
    SELECT p.name,
           coalesce(p.title, pub.title) AS title,
           coalesce(p.description, pub.description) AS description,
           pub.version, pub.spec_format, p.status, p.tags, p.swagger_url,
           p.last_checked_at, p.last_changed_at, p.owner, p.contact,
           pub.contact AS document_contact,
           CASE WHEN p.status = 'invalid' THEN coalesce(jsonb_array_length(cur.errors), 0) ELSE 0 END
               AS errors_count,
           coalesce(pub.operations_count, 0) AS operations_count,
           p.lint_score
    FROM {projects} p
    LEFT JOIN documents pub ON pub.id = p.published_document_id
    LEFT JOIN documents cur ON cur.id = p.current_document_id
"""


# How a page of entries may be ordered (search results: by relevance first).
SORTS = {
    "name": "p.name",
    "changed": "p.last_changed_at DESC NULLS LAST, p.name",
    "status": "p.status, p.name",
}


async def list_entries(
    db: Executor,
    *,
    q: str | None,
    tag: str | None,
    status: str | None,
    limit: int,
    offset: int,
    sort: str = "name",
    min_score: int | None = None,
    known_total: int | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """A page of the catalog, and the total (``known_total`` when the caller knows it)."""
    conditions = []
    args: list[Any] = []
    rank = "0::real"
    if q:
        args.append(q)
        conditions.append(f"p.search_vector @@ catalog_tsquery(${len(args)})")
        rank = f"ts_rank(p.search_vector, catalog_tsquery(${len(args)}))"
    if tag:
        args.append([tag])
        conditions.append(f"p.tags @> ${len(args)}::text[]")
    if status:
        args.append(status)
        conditions.append(f"p.status = ${len(args)}")
    if min_score is not None:
        args.append(min_score)
        conditions.append(f"p.lint_score >= ${len(args)}")
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    # The page is chosen among the projects alone (ORDER BY ... LIMIT over an index:
    # the name index, or GIN for q and tag); only then are the documents of its rows
    # joined. Joined first, every description in the catalog was read for each page.
    page = f"""(
        SELECT p.*, {rank} AS rank FROM projects p {where}
        ORDER BY {rank} DESC, {SORTS[sort]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}
    )"""
    rows = await db.fetch(
        f"""
        {_ENTRY.format(projects=page)}
        ORDER BY p.rank DESC, {SORTS[sort]}
        """,
        *args,
        limit,
        offset,
    )
    if known_total is not None:
        return rows, known_total
    count = f"SELECT count(*) FROM projects p {where}"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=args)


async def all_entries(db: Executor) -> list[asyncpg.Record]:
    """Every entry, in the order of names that list_entries pages through."""
    return await db.fetch(f"{_ENTRY.format(projects='projects')} ORDER BY p.name")


async def named_entries(db: Executor, names: list[str]) -> list[asyncpg.Record]:
    """The entries of these projects (those still there), in the order of names, each
    with the name before it in that order (``preceding``; None for the first)."""
    return await db.fetch(
        f"""
        SELECT e.*, (SELECT max(q.name) FROM projects q WHERE q.name < e.name) AS preceding
        FROM ({_ENTRY.format(projects="projects")} WHERE p.name = ANY($1::text[])) e
        ORDER BY e.name
        """,
        names,
    )


async def get_entry(db: Executor, *, name: str) -> tuple[asyncpg.Record, list[dict[str, str]]]:
    row = await db.fetchrow(f"{_ENTRY.format(projects='projects')} WHERE p.name = $1", name)
    if row is None:
        raise NotFound(f"no API named {name!r} in the catalog")
    errors = await db.fetchval(
        """SELECT d.errors FROM projects p JOIN documents d ON d.id = p.current_document_id
           WHERE p.name = $1 AND NOT d.valid""",
        name,
    )
    return row, list(errors or [])


async def published_document(db: Executor, *, name: str) -> tuple[str, bytes]:
    """The last valid document as JSON text, and its SHA-256."""
    row = await db.fetchrow(
        """SELECT p.status, d.content_json, d.sha256 FROM projects p
           LEFT JOIN documents d ON d.id = p.published_document_id WHERE p.name = $1""",
        name,
    )
    if row is None:
        raise NotFound(f"no API named {name!r} in the catalog")
    if row["content_json"] is None:
        why = {
            "pending": "it has not been collected yet",
            "invalid": "every version collected so far is invalid; see its validation_errors",
            "unreachable": "its swagger_url could not be downloaded; see its collections",
        }.get(row["status"], "no valid version was ever collected")
        raise NotFound(f"{name!r} has no published document: {why}")
    return row["content_json"], row["sha256"]


async def published_lint(db: Executor, *, name: str) -> tuple[str | None, dict[str, Any] | None]:
    """The published version's format and its design rules report as stored (None:
    none yet), or (None, None) when nothing is published."""
    row = await db.fetchrow(
        """SELECT d.lint, d.spec_format FROM projects p
           LEFT JOIN documents d ON d.id = p.published_document_id WHERE p.name = $1""",
        name,
    )
    if row is None:
        raise NotFound(f"no API named {name!r} in the catalog")
    return row["spec_format"], row["lint"]


async def lint_report(db: Executor, *, name: str) -> dict[str, Any]:
    """The API design rules report on the published version."""
    spec_format, report = await published_lint(db, name=name)
    if spec_format is None:
        raise NotFound(f"{name!r} has no published version, so nothing has been linted")
    if report is None:
        raise NotFound(
            f"the published version of {name!r} has not been linted yet: it was collected before "
            "linting began, and is linted when it is next collected"
        )
    if "unfinished" in report:
        raise NotFound(
            f"the published version of {name!r} has no design rules report: {report['unfinished']}"
        )
    if report.get("applicable") is False:
        raise NotFound(
            f"the API design rules apply to OpenAPI 3.x; {name!r} publishes Swagger 2.0: not applicable"
        )
    return report


async def list_versions(
    db: Executor, *, name: str, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", name)
    if project_id is None:
        raise NotFound(f"no API named {name!r} in the catalog")
    rows = await db.fetch(
        """SELECT sha256, collected_at, version, valid FROM documents WHERE project_id = $1
           ORDER BY collected_at DESC, id DESC LIMIT $2 OFFSET $3""",
        project_id,
        limit,
        offset,
    )
    count = "SELECT count(*) FROM documents WHERE project_id = $1"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=[project_id])


async def valid_version(db: Executor, *, name: str, version: str | None) -> asyncpg.Record:
    """A valid version stored for the API: by SHA-256 (hex), else the newest collected
    with that info.version; the published one for None."""
    if version is None:
        row = await db.fetchrow(
            """
            SELECT d.id, d.sha256, d.version, d.collected_at, d.content_json
            FROM projects p JOIN documents d ON d.id = p.published_document_id WHERE p.name = $1
            """,
            name,
        )
        if row is None:
            raise NotFound(f"{name!r} has no published version")
        return row
    row = await db.fetchrow(
        """
        SELECT d.id, d.sha256, d.version, d.collected_at, d.content_json
        FROM documents d JOIN projects p ON p.id = d.project_id
        WHERE p.name = $1 AND d.valid
          AND (encode(d.sha256, 'hex') = lower($2) OR d.version = $2)
        ORDER BY (encode(d.sha256, 'hex') = lower($2)) DESC, d.collected_at DESC, d.id DESC
        LIMIT 1
        """,
        name,
        version,
    )
    if row is None:
        raise NotFound(
            f"{name!r} has no valid version {version!r} (GET /api/catalog/{name}/versions lists them)"
        )
    return row


async def search_operations(
    db: Executor,
    *,
    q: str | None,
    method: str | None,
    project: str | None,
    limit: int,
    offset: int,
    known_total: int | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """A page of operations, and the total (``known_total`` when the caller knows it)."""
    conditions = []
    args: list[Any] = []
    order = "p.name, o.path, o.method"
    if q:
        args.append(q)
        conditions.append(f"o.search_vector @@ catalog_tsquery(${len(args)})")
        order = f"ts_rank(o.search_vector, catalog_tsquery(${len(args)})) DESC, {order}"
    if method:
        args.append(method.upper())
        conditions.append(f"o.method = ${len(args)}")
    if project:
        args.append(project)
        conditions.append(f"p.name = ${len(args)}")
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    # A search ranks every match anyway: counting them in the same query saves the
    # second round trip. (Without q, the order's index lets a page stop early.)
    total = ", count(*) OVER () AS total" if q and known_total is None else ""
    rows = await db.fetch(
        f"""
        SELECT p.name AS project, o.method, o.path, o.operation_id, o.summary, o.deprecated{total}
        FROM operations o JOIN projects p ON p.published_document_id = o.document_id
        {where}
        ORDER BY {order}
        LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}
        """,
        *args,
        limit,
        offset,
    )
    if known_total is not None:
        return rows, known_total
    if total and rows:
        return rows, rows[0]["total"]
    count = f"SELECT count(*) FROM operations o JOIN projects p ON p.published_document_id = o.document_id {where}"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=args)


async def tsqueries(db: Executor, qs: list[str]) -> dict[str, str]:
    """The tsquery a search for each of ``qs`` runs, as text, in one round trip."""
    rows = await db.fetch("SELECT q, catalog_tsquery(q)::text AS tsquery FROM unnest($1::text[]) AS q", qs)
    return {row["q"]: row["tsquery"] for row in rows}


async def published_documents(db: Executor) -> list[asyncpg.Record]:
    """Every published document and its API's name, in the order of names that
    search_operations lists them in."""
    return await db.fetch(
        """SELECT p.published_document_id AS document_id, p.name FROM projects p
           WHERE p.published_document_id IS NOT NULL ORDER BY p.name"""
    )


async def operations_of(pool: asyncpg.Pool, document_ids: list[int]) -> AsyncIterator[asyncpg.Record]:
    """The operations of these documents, each in the order search_operations lists
    them in, with their search vectors' lexemes and the weights of each one's
    positions (position order). Read with a cursor, a thousand rows at a time: a
    document of 150,000 operations is never decoded in one go on the event loop."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for row in conn.cursor(
            """
            SELECT o.document_id, o.method, o.path, o.operation_id, o.summary, o.deprecated,
                   ARRAY(SELECT u.lexeme FROM unnest(o.search_vector) u) AS lexemes,
                   ARRAY(SELECT array_to_string(u.weights, '') FROM unnest(o.search_vector) u) AS weights
            FROM operations o WHERE o.document_id = ANY($1::bigint[])
            ORDER BY o.document_id, o.path, o.method
            """,
            document_ids,
            prefetch=1000,
        ):
            yield row


async def published_names(db: Executor) -> list[asyncpg.Record]:
    """Every API with a published document, by name (for the browser and discovery)."""
    return await db.fetch(
        """SELECT p.name, coalesce(p.title, d.title) AS title FROM projects p
           JOIN documents d ON d.id = p.published_document_id ORDER BY p.name"""
    )


async def status_counts(db: Executor) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM projects GROUP BY status")
    counts = {"valid": 0, "invalid": 0, "unreachable": 0, "pending": 0}
    counts.update({row["status"]: row["n"] for row in rows})
    counts["total"] = sum(counts.values())
    return counts


async def published_version(db: Executor, *, name: str, sha256: bytes) -> str:
    """One valid version of an API, as JSON text."""
    row = await db.fetchrow(
        """SELECT d.valid, d.content_json FROM projects p JOIN documents d ON d.project_id = p.id
           WHERE p.name = $1 AND d.sha256 = $2""",
        name,
        sha256,
    )
    if row is None:
        raise NotFound(f"{name!r} has no version {sha256.hex()}")
    if not row["valid"] or row["content_json"] is None:
        raise NotFound(f"version {sha256.hex()} of {name!r} is not valid, so it is not published")
    text: str = row["content_json"]
    return text
