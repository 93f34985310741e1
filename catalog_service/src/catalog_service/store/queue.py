"""The collection queue and its records: leases, documents, operations, attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..domain import Analysis, Job, Result
from ..errors import NotFound
from . import webhooks
from .db import Connection, Executor, free_lease, page_total, storable
from .projects import PROJECT_COLUMNS

# Both ways of claiming end here: the rows of a CTE "claimed" (id, trigger and the
# ids of the published and current documents) are leased to $2 for $3 seconds, and
# returned as jobs, with what the collection needs of those two documents.
_TAKE_LEASE = """
    UPDATE projects p
    SET lease_owner = $2,
        lease_expires_at = now() + make_interval(secs => $3),
        next_check_at = 'infinity',
        requested_trigger = NULL
    FROM claimed
    LEFT JOIN documents pub ON pub.id = claimed.published_id
    LEFT JOIN documents cur ON cur.id = claimed.current_id
    WHERE p.id = claimed.id
    RETURNING claimed.trigger, p.id, p.name, p.swagger_url, p.http_etag, p.http_last_modified,
              p.consecutive_failures, p.published_document_id, p.status,
              pub.sha256 AS published_sha256, pub.lint->>'ruleset' AS published_ruleset,
              pub.version AS published_version, coalesce(p.title, pub.title) AS title,
              p.lint_score AS published_score,
              cur.sha256 AS current_sha256, cur.valid AS current_valid, cur.sources AS current_sources
"""


def _job(row: asyncpg.Record) -> Job:
    return Job(
        id=row["id"],
        name=row["name"],
        swagger_url=row["swagger_url"],
        http_etag=row["http_etag"],
        http_last_modified=row["http_last_modified"],
        current_sha256=row["current_sha256"],
        current_valid=row["current_valid"],
        consecutive_failures=row["consecutive_failures"],
        trigger=row["trigger"] or "schedule",
        published_document_id=row["published_document_id"],
        published_sha256=row["published_sha256"],
        published_ruleset=row["published_ruleset"],
        status=row["status"],
        current_sources=row["current_sources"],
        title=row["title"],
        published_version=row["published_version"],
        published_score=row["published_score"],
    )


_FREE_LEASE = free_lease("$4")


async def claim_due(
    db: Executor, *, replica: str, limit: int, lease_seconds: float, silent_after: float
) -> list[Job]:
    """Lease up to ``limit`` due projects. SKIP LOCKED: replicas never take the same one.

    Fair across owners: each owner's due projects take turns with every other owner's,
    and an owner's projects being collected right now count as turns already taken,
    so one owner's thousand slow upstreams delay another's project by one fetch at
    most, not by a thousand."""
    rows = await db.fetch(
        f"""
        WITH due AS (
            SELECT id, owner, next_check_at FROM projects
            WHERE (lease_owner IS NULL AND next_check_at <= now())
               OR (lease_owner IS NOT NULL AND {_FREE_LEASE})
        ), busy AS (
            SELECT owner, count(*) AS n FROM projects
            WHERE lease_owner IS NOT NULL AND NOT {_FREE_LEASE}
            GROUP BY owner
        ), turns AS (
            SELECT due.id,
                   row_number() OVER (PARTITION BY due.owner ORDER BY due.next_check_at)
                   + coalesce(busy.n, 0) AS turn,
                   due.next_check_at
            FROM due LEFT JOIN busy USING (owner)
            ORDER BY turn, next_check_at
            LIMIT $1 * 4
        ), claimed AS (
            SELECT p.id, p.requested_trigger AS trigger,
                   p.published_document_id AS published_id, p.current_document_id AS current_id
            FROM projects p
            WHERE p.id IN (SELECT id FROM turns)
              AND ((p.lease_owner IS NULL AND p.next_check_at <= now())
                   OR (p.lease_owner IS NOT NULL AND {_FREE_LEASE}))
            ORDER BY (SELECT turn FROM turns WHERE turns.id = p.id), p.next_check_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        {_TAKE_LEASE}
        """,
        limit,
        replica,
        lease_seconds,
        silent_after,
    )
    return [_job(row) for row in rows]


async def heartbeat(db: Executor, *, replica: str) -> None:
    """This replica is alive (its leases stay its own); replicas long gone are forgotten."""
    await db.execute(
        """
        WITH gone AS (DELETE FROM replicas WHERE heartbeat_at < now() - interval '1 day')
        INSERT INTO replicas (name) VALUES ($1)
        ON CONFLICT (name) DO UPDATE SET heartbeat_at = now()
        """,
        replica,
    )


async def release_leases(db: Executor, *, replica: str) -> int:
    """A replica stopping hands back what it holds, due at once; returns how many."""
    released = await db.fetchval(
        """
        WITH released AS (
            UPDATE projects SET lease_owner = NULL, lease_expires_at = NULL,
                next_check_at = CASE WHEN next_check_at = 'infinity' THEN now() ELSE next_check_at END
            WHERE lease_owner = $1
            RETURNING id
        ), gone AS (DELETE FROM replicas WHERE name = $1)
        SELECT count(*) FROM released
        """,
        replica,
    )
    return int(released)


async def claim_named(
    db: Executor, *, name: str, replica: str, lease_seconds: float, silent_after: float, trigger: str
) -> Job | None:
    """Lease one project now, due or not; None while another replica holds it."""
    row = await db.fetchrow(
        f"""
        WITH claimed AS (
            SELECT id, $5::text AS trigger,
                   published_document_id AS published_id, current_document_id AS current_id
            FROM projects
            WHERE name = $1 AND (lease_owner IS NULL OR {_FREE_LEASE})
            FOR UPDATE
        )
        {_TAKE_LEASE}
        """,
        name,
        replica,
        lease_seconds,
        silent_after,
        trigger,
    )
    if row is None:
        if await db.fetchval("SELECT 1 FROM projects WHERE name = $1", name) is None:
            raise NotFound(f"no project named {name!r}")
        return None
    return _job(row)


async def request_collection(
    db: Executor, *, name: str, trigger: str, owner: str | None = None
) -> asyncpg.Record | None:
    """Make a project due now (only when ``owner`` owns it, if given); a replica
    collecting it will collect it again after. The project, or None when it is not
    there or not ``owner``'s."""
    row: asyncpg.Record | None = await db.fetchrow(
        f"""UPDATE projects SET next_check_at = now(), requested_trigger = $2
            WHERE name = $1 AND ($3::text IS NULL OR owner = $3)
            RETURNING {PROJECT_COLUMNS}""",
        name,
        trigger,
        owner,
    )
    return row


async def queue_depth(db: Executor) -> int:
    depth: int = await db.fetchval(
        "SELECT count(*) FROM projects WHERE (lease_owner IS NULL AND next_check_at <= now()) OR lease_expires_at < now()"
    )
    return depth


async def find_analysis(
    db: Executor, *, sha256: bytes, ruleset: str, verdict_only: bool = False
) -> Analysis | None:
    """A verdict already reached for these exact bytes, in any project, linted with
    ``ruleset`` (without the document and its operations when ``verdict_only``)."""
    # A verdict reused for storing is copied inside PostgreSQL (store_document): its
    # findings, thousands for a large API, are not read here.
    row = await db.fetchrow(
        f"""
        SELECT id, spec_format, version, title, description, valid, errors, contact, operations_count,
               {"lint" if verdict_only else "lint - 'findings' AS lint"}
        FROM documents WHERE sha256 = $1 AND lint->>'ruleset' = $2
          -- Verdicts from before bundling, on a document that refers to other files
          -- alone, are not verdicts on it any more.
          AND NOT errors @? '$[*] ? (@.message like_regex "^external reference .* is not fetched")'
        LIMIT 1
        """,
        sha256,
        ruleset,
    )
    if row is None:
        return None
    if verdict_only:
        return Analysis(
            spec_format=row["spec_format"], valid=row["valid"], errors=row["errors"], lint=row["lint"]
        )
    return Analysis(
        spec_format=row["spec_format"],
        valid=row["valid"],
        errors=row["errors"],
        version=row["version"],
        title=row["title"],
        description=row["description"],
        contact=row["contact"],
        operations_count=row["operations_count"],
        lint=row["lint"],
        same_as=row["id"],
    )


class SourceGone(Exception):
    """The stored document a verdict was found on went before its copy was made."""


# Values larger than this reach PostgreSQL in pieces, a round trip each: a 20 MB
# document and its JSON sent as one message held the event loop for 50 ms, and
# every request waited.
PIECE_BYTES = 1024 * 1024


async def _parameter(conn: Connection, number: int, value: bytes | str | None) -> tuple[str, Any]:
    """The SQL for query parameter ``number`` and the value to pass for it. A value over
    PIECE_BYTES goes ahead in pieces into this transaction's upload table, and the SQL
    joins them again (as text for a str); the parameter itself is then NULL."""
    if value is None or len(value) <= PIECE_BYTES:
        return f"${number}", value
    data = value.encode() if isinstance(value, str) else value
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS upload_pieces (slot int, n int, piece bytea) ON COMMIT DELETE ROWS"
    )
    for n, start in enumerate(range(0, len(data), PIECE_BYTES)):
        await conn.execute(
            "INSERT INTO pg_temp.upload_pieces VALUES ($1, $2, $3)",
            number,
            n,
            data[start : start + PIECE_BYTES],
        )
    joined = (
        f"(SELECT string_agg(piece, ''::bytea ORDER BY n) FROM pg_temp.upload_pieces WHERE slot = {number})"
    )
    if isinstance(value, str):
        joined = f"convert_from({joined}, 'UTF8')"
    return f"coalesce(${number}, {joined})", None


async def store_document(
    conn: Connection,
    *,
    project_id: int,
    sha256: bytes,
    raw: bytes,
    analysis: Analysis,
    sources: list[dict[str, str | None]] | None = None,
) -> int:
    """The document's id; a project that returns to an earlier version reuses its row."""
    async with conn.transaction():
        raw_sql, raw_arg = await _parameter(conn, 3, raw)
        if analysis.same_as is not None:
            # Locked until the copy is made: a source deleted meanwhile is noticed here.
            if (
                await conn.fetchval("SELECT 1 FROM documents WHERE id = $1 FOR SHARE", analysis.same_as)
                is None
            ):
                raise SourceGone(f"document {analysis.same_as} went while its verdict was reused")
            document_id = await conn.fetchval(
                f"""
                INSERT INTO documents (project_id, sha256, raw, content_json, spec_format, version,
                                       title, description, valid, errors, contact, sources,
                                       operations_count, lint, lint_score)
                SELECT $1, $2, {raw_sql}, content_json, spec_format, version, title, description,
                       valid, errors, contact, $4, operations_count, lint, lint_score
                FROM documents WHERE id = $5
                ON CONFLICT (project_id, sha256) DO NOTHING
                RETURNING id
                """,
                project_id,
                sha256,
                raw_arg,
                sources,
                analysis.same_as,
            )
        else:
            json_sql, json_arg = await _parameter(conn, 4, analysis.content_json)
            operations_json, operations_count = analysis.packed_operations()
            document_id = await conn.fetchval(
                f"""
                INSERT INTO documents (project_id, sha256, raw, content_json, spec_format, version,
                                       title, description, valid, errors, contact, sources,
                                       operations_count, lint, lint_score)
                VALUES ($1, $2, {raw_sql}, {json_sql}, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                ON CONFLICT (project_id, sha256) DO NOTHING
                RETURNING id
                """,
                project_id,
                sha256,
                raw_arg,
                json_arg,
                analysis.spec_format,
                analysis.version,
                analysis.title,
                analysis.description,
                analysis.valid,
                analysis.errors,
                analysis.contact,
                sources,
                operations_count,
                # Messages quote the document (a name with a NUL in it, say).
                storable(analysis.lint),
                (analysis.lint or {}).get("score"),
            )
        if document_id is None:
            # The same version again: its files' validators may be newer.
            existing: int = await conn.fetchval(
                """
                UPDATE documents SET sources = coalesce($3, sources)
                WHERE project_id = $1 AND sha256 = $2 RETURNING id
                """,
                project_id,
                sha256,
                sources,
            )
            return existing
        if analysis.same_as is not None:
            await conn.execute(
                """
                INSERT INTO operations (document_id, method, path, operation_id, summary, tags, deprecated)
                SELECT $1, method, path, operation_id, summary, tags, deprecated
                FROM operations WHERE document_id = $2
                """,
                document_id,
                analysis.same_as,
            )
            return int(document_id)
        operations_sql, operations_arg = await _parameter(conn, 2, operations_json)
        await conn.execute(
            f"""
            INSERT INTO operations (document_id, method, path, operation_id, summary, tags, deprecated)
            SELECT $1, o.method, o.path, o.operation_id, o.summary, o.tags, o.deprecated
            -- ::text first: the pool would encode a json parameter itself.
            FROM json_to_recordset(({operations_sql})::text::json) AS o(
                method text, path text, operation_id text, summary text, tags text[], deprecated boolean)
            """,
            document_id,
            operations_arg,
        )
        return int(document_id)


async def prune_unpublished(db: Executor, *, project_id: int, keep: int, current_document_id: int) -> int:
    """Drop a project's oldest versions that were never valid, beyond the newest
    ``keep`` (every valid version stays, and so does the current one); returns how
    many went."""
    deleted = await db.fetchval(
        """
        WITH gone AS (
            DELETE FROM documents d
            WHERE d.project_id = $1 AND NOT d.valid AND d.id <> $3
              AND d.id NOT IN (SELECT id FROM documents WHERE project_id = $1 AND NOT valid
                               ORDER BY collected_at DESC, id DESC LIMIT $2)
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        project_id,
        keep,
        current_document_id,
    )
    return int(deleted)


async def document_json(db: Executor, *, document_id: int) -> str | None:
    text: str | None = await db.fetchval("SELECT content_json FROM documents WHERE id = $1", document_id)
    return text


async def record_change(
    db: Executor,
    *,
    project_id: int,
    from_document_id: int,
    to_document_id: int,
    changes: list[dict[str, Any]],
) -> None:
    await db.execute(
        """
        INSERT INTO changes (project_id, from_document_id, to_document_id, breaking, changes)
        VALUES ($1, $2, $3, $4, $5)
        """,
        project_id,
        from_document_id,
        to_document_id,
        any(change["breaking"] for change in changes),
        storable(changes),
    )


@dataclass(frozen=True, slots=True)
class Finished:
    """One collection to record: the leased project, what it came to, and when it is
    due next (seconds from now)."""

    job: Job
    result: Result
    next_delay: float


async def finish(
    conn: Connection,
    *,
    job: Job,
    replica: str,
    result: Result,
    next_delay: float,
    events: Sequence[tuple[str, str]] = (),
    give_up_seconds: float = 0.0,
) -> bool:
    """Record the attempt and release the lease, and write the ``events`` it makes to
    the webhook outbox (to be retried for ``give_up_seconds``) in the same
    transaction. False when the lease was lost meanwhile (nothing is written)."""
    finished = [Finished(job, result, next_delay)]
    if not events:
        # One statement, atomic on its own: a refresh that finds nothing new costs one
        # round trip here, not five (BEGIN, UPDATE, INSERT, COMMIT).
        return bool(await finish_all(conn, replica=replica, finished=finished))
    async with conn.transaction():
        if not await finish_all(conn, replica=replica, finished=finished):
            return False
        await webhooks.enqueue(conn, project_id=job.id, events=events, give_up_seconds=give_up_seconds)
    return True


async def finish_all(conn: Executor, *, replica: str, finished: Sequence[Finished]) -> set[int]:
    """Record several attempts and release their leases in one statement (a refresh of
    thousands of unchanged documents was a round trip each); the ids of the projects
    whose lease this replica still held. The others are not written."""
    columns: list[list[Any]] = [[] for _ in range(16)]
    for one in finished:
        job, result = one.job, one.result
        for column, value in zip(
            columns,
            (
                job.id,
                result.status,
                result.changed,
                result.document_id,
                result.published,
                result.etag,
                result.last_modified,
                result.keep_cache_headers,
                one.next_delay,
                result.failed,
                job.swagger_url,
                job.trigger,
                result.started_at,
                result.http_status,
                result.outcome,
                result.error,
            ),
            strict=True,
        ):
            column.append(value)
    rows = await conn.fetch(_FINISH, replica, *columns)
    return {row["project_id"] for row in rows}


# Records the attempts and releases the leases, only while this replica holds them:
# each collection's row is inserted from the updated one, so a lost lease writes neither.
_FINISH = """
    WITH attempt AS (
        SELECT * FROM unnest($2::bigint[], $3::text[], $4::bool[], $5::bigint[], $6::bool[],
                             $7::text[], $8::text[], $9::bool[], $10::float8[], $11::bool[],
                             $12::text[], $13::text[], $14::timestamptz[], $15::int[],
                             $16::text[], $17::text[])
            AS a(id, status, changed, document_id, published, etag, last_modified,
                 keep_cache_headers, next_delay, failed, swagger_url, trigger, started_at,
                 http_status, outcome, error)
    ), finished AS (
        UPDATE projects p SET
            status = a.status,
            last_checked_at = now(),
            last_changed_at = CASE WHEN a.changed THEN now() ELSE p.last_changed_at END,
            current_document_id = COALESCE(a.document_id, p.current_document_id),
            published_document_id = CASE WHEN a.published THEN a.document_id
                                          ELSE p.published_document_id END,
            lint_score = CASE WHEN a.published
                              THEN (SELECT lint_score FROM documents WHERE id = a.document_id)
                              ELSE p.lint_score END,
            -- Validators of the URL collected, never of one the project moved to meanwhile.
            http_etag = CASE WHEN a.keep_cache_headers OR p.swagger_url IS DISTINCT FROM a.swagger_url
                             THEN p.http_etag ELSE a.etag END,
            http_last_modified = CASE WHEN a.keep_cache_headers OR p.swagger_url IS DISTINCT FROM a.swagger_url
                                      THEN p.http_last_modified ELSE a.last_modified END,
            consecutive_failures = CASE WHEN a.failed THEN p.consecutive_failures + 1 ELSE 0 END,
            -- A request made while we worked (next_check_at no longer 'infinity') stands.
            next_check_at = CASE WHEN p.next_check_at = 'infinity'
                                 THEN now() + make_interval(secs => a.next_delay)
                                 ELSE p.next_check_at END,
            lease_owner = NULL,
            lease_expires_at = NULL
        FROM attempt a
        WHERE p.id = a.id AND p.lease_owner = $1
        RETURNING p.id, a.trigger, a.started_at, a.http_status, a.outcome, a.error, a.document_id
    ), recorded AS (
        INSERT INTO collections (project_id, trigger, started_at, finished_at, http_status,
                                 outcome, error, document_id, replica)
        SELECT id, trigger, started_at, now(), http_status, outcome, error, document_id, $1
        FROM finished
        RETURNING project_id
    )
    SELECT project_id FROM recorded
"""


async def list_collections(
    db: Executor, *, name: str, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", name)
    if project_id is None:
        raise NotFound(f"no project named {name!r}")
    rows = await db.fetch(
        """
        SELECT started_at, finished_at, http_status, outcome, error, trigger
        FROM collections WHERE project_id = $1
        ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3
        """,
        project_id,
        limit,
        offset,
    )
    count = "SELECT count(*) FROM collections WHERE project_id = $1"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=[project_id])


async def published_json(db: Executor, *, document_id: int) -> str | None:
    """A stored document as JSON text."""
    text: str | None = await db.fetchval("SELECT content_json FROM documents WHERE id = $1", document_id)
    return text


async def save_lint(conn: Connection, *, document_id: int, report: dict[str, Any]) -> None:
    """A version's (new) design rules report, and its score on the project publishing it."""
    score = report.get("score")
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET lint = $2, lint_score = $3 WHERE id = $1",
            document_id,
            storable(report),
            score,
        )
        await conn.execute(
            "UPDATE projects SET lint_score = $2 WHERE published_document_id = $1", document_id, score
        )
