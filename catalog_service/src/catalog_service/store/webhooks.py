"""Webhook subscriptions and their outbox of deliveries."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ..errors import Forbidden, NotFound
from .db import Connection, Executor, free_lease, page_total

WEBHOOK_COLUMNS = """
    w.id, w.url, w.events, w.owner, w.description, w.created_at,
    p.name AS project, p.owner AS project_owner
"""

DELIVERY_COLUMNS = """
    id, type, status, attempts, created_at, next_attempt_at, give_up_at, last_attempt_at,
    last_http_status, last_error, delivered_at
"""


async def create_webhook(
    db: asyncpg.Pool,
    *,
    webhook_id: str,
    project: str | None,
    url: str,
    events: Sequence[str],
    secret: str,
    owner: str,
    description: str | None,
    max_per_project: int,
) -> asyncpg.Record:
    """A new subscription to ``project``'s events (None: every project's)."""
    async with db.acquire() as conn, conn.transaction():
        project_id = None
        if project is not None:
            project_id = await conn.fetchval("SELECT id FROM projects WHERE name = $1 FOR UPDATE", project)
            if project_id is None:
                raise NotFound(f"no project named {project!r}")
        # One subscription of this project (or of all) at a time: the count cannot race past the cap.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('webhooks:' || coalesce($1::text, '*')))", project
        )
        held = await conn.fetchval(
            "SELECT count(*) FROM webhooks WHERE project_id IS NOT DISTINCT FROM $1", project_id
        )
        if held >= max_per_project:
            whose = f"the project {project!r}" if project else "all projects"
            raise Forbidden(f"{whose} has {held} webhooks, the most allowed; delete one first")
        await conn.execute(
            """
            INSERT INTO webhooks (id, project_id, url, events, secret, owner, description)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            webhook_id,
            project_id,
            url,
            list(events),
            secret,
            owner,
            description,
        )
        return await get_webhook(conn, webhook_id=webhook_id)


async def get_webhook(db: Executor, *, webhook_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN projects p ON p.id = w.project_id WHERE w.id = $1",
        webhook_id,
    )
    if row is None:
        raise NotFound(f"no webhook with id {webhook_id!r}")
    return row


async def list_webhooks(
    db: Executor, *, project: str | None, caller: str, admin: bool, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """The subscriptions ``caller`` may see (an admin: all; else those it made and those
    of the projects it owns), of one project (with those for every project) or of all."""
    if project is not None and await db.fetchval("SELECT 1 FROM projects WHERE name = $1", project) is None:
        raise NotFound(f"no project named {project!r}")
    where = """
        ($1::text IS NULL OR p.name = $1 OR w.project_id IS NULL)
        AND ($2 OR w.owner = $3 OR p.owner = $3)
    """
    args = [project, admin, caller]
    rows = await db.fetch(
        f"""
        SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN projects p ON p.id = w.project_id
        WHERE {where} ORDER BY w.created_at, w.id LIMIT $4 OFFSET $5
        """,
        *args,
        limit,
        offset,
    )
    count = f"SELECT count(*) FROM webhooks w LEFT JOIN projects p ON p.id = w.project_id WHERE {where}"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=args)


async def delete_webhook(db: Executor, *, webhook_id: str) -> None:
    if await db.fetchval("DELETE FROM webhooks WHERE id = $1 RETURNING 1", webhook_id) is None:
        raise NotFound(f"no webhook with id {webhook_id!r}")


# -- the outbox -------------------------------------------------------------------


async def enqueue(
    conn: Connection, *, project_id: int, events: Sequence[tuple[str, str]], give_up_seconds: float
) -> int:
    """Write ``events`` ((type, body) pairs) to the outbox, one row for each subscription
    that asked for the type, in the caller's transaction; returns how many rows."""
    if not events:
        return 0
    written = await conn.fetchval(
        """
        WITH written AS (
            INSERT INTO webhook_deliveries (id, webhook_id, type, body, give_up_at)
            SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), w.id, e.type, e.body,
                   now() + make_interval(secs => $4)
            FROM webhooks w
            JOIN unnest($2::text[], $3::text[]) AS e(type, body) ON e.type = ANY (w.events)
            WHERE w.project_id = $1 OR w.project_id IS NULL
            RETURNING 1
        )
        SELECT count(*) FROM written
        """,
        project_id,
        [event_type for event_type, _ in events],
        [body for _, body in events],
        give_up_seconds,
    )
    return int(written)


_FREE = free_lease("$4")


async def claim_due(
    db: Executor, *, replica: str, limit: int, lease_seconds: float, silent_after: float
) -> list[asyncpg.Record]:
    """Lease up to ``limit`` deliveries due now. SKIP LOCKED: replicas never take the
    same one; a lease whose holder stopped or died is free again."""
    return await db.fetch(
        f"""
        WITH due AS (
            SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= now()
              AND (lease_owner IS NULL OR {_FREE})
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE webhook_deliveries d
        SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3)
        FROM due, webhooks w
        WHERE d.id = due.id AND w.id = d.webhook_id
        RETURNING d.id, d.type, d.body, d.attempts, d.give_up_at, w.id AS webhook_id, w.url, w.secret
        """,
        limit,
        replica,
        lease_seconds,
        silent_after,
    )


async def record_attempt(
    db: Executor,
    *,
    delivery_id: str,
    replica: str,
    delivered: bool,
    http_status: int | None,
    error: str | None,
    retry_after: float,
) -> str | None:
    """One attempt's outcome, and the lease let go: delivered, or pending again in
    ``retry_after`` seconds, or failed when that is past its time. The new status;
    None when the lease was lost meanwhile (another replica sends it)."""
    status: str | None = await db.fetchval(
        """
        UPDATE webhook_deliveries SET
            attempts = attempts + 1,
            last_attempt_at = now(),
            last_http_status = $4,
            last_error = $5,
            status = CASE WHEN $3 THEN 'delivered'
                          WHEN now() + make_interval(secs => $6) > give_up_at THEN 'failed'
                          ELSE 'pending' END,
            delivered_at = CASE WHEN $3 THEN now() END,
            next_attempt_at = CASE WHEN $3 THEN next_attempt_at
                                   ELSE now() + make_interval(secs => $6) END,
            lease_owner = NULL,
            lease_expires_at = NULL
        WHERE id = $1 AND lease_owner = $2
        RETURNING status
        """,
        delivery_id,
        replica,
        delivered,
        http_status,
        error,
        retry_after,
    )
    return status


async def release_deliveries(db: Executor, *, replica: str) -> None:
    """A replica stopping hands back the deliveries it was sending, due at once."""
    await db.execute(
        """
        UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now()
        WHERE lease_owner = $1
        """,
        replica,
    )


async def prune_deliveries(db: Executor, *, older_than_days: float) -> int:
    """Forget deliveries done with (delivered or failed) longer ago than that; returns
    how many went. Pending ones stay, however old."""
    gone = await db.fetchval(
        """
        WITH gone AS (
            DELETE FROM webhook_deliveries
            WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1::int)
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        int(older_than_days),
    )
    return int(gone)


async def list_deliveries(
    db: Executor, *, webhook_id: str, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    rows = await db.fetch(
        f"""
        SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1
        ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3
        """,
        webhook_id,
        limit,
        offset,
    )
    count = "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1"
    return rows, await page_total(db, rows, limit=limit, offset=offset, count=count, args=[webhook_id])


async def redeliver(
    db: Executor, *, webhook_id: str, delivery_id: str, give_up_seconds: float
) -> asyncpg.Record:
    """Send a delivery again now (with the same webhook-id and body), retried as a new
    one would be."""
    row = await db.fetchrow(
        f"""
        UPDATE webhook_deliveries SET
            status = 'pending', next_attempt_at = now(), delivered_at = NULL,
            give_up_at = now() + make_interval(secs => $3)
        WHERE id = $2 AND webhook_id = $1
        RETURNING {DELIVERY_COLUMNS}
        """,
        webhook_id,
        delivery_id,
        give_up_seconds,
    )
    if row is None:
        raise NotFound(f"no delivery {delivery_id!r} of the webhook {webhook_id!r}")
    return row
