"""Connection pool and schema migrations."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..domain import storable_text
from ..errors import CatalogError

log = logging.getLogger(__name__)

# Any fixed 64-bit number: every replica takes this advisory lock before it migrates.
MIGRATION_LOCK_KEY = 0x63617461_6C6F6701

# A connection of its own, or one lent by the pool: every statement here takes either.
Connection = asyncpg.Connection | PoolConnectionProxy
# ...or the pool itself, for a statement that needs no transaction.
Executor = Connection | asyncpg.Pool

# What asyncpg and the network raise when the database cannot be reached right now.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # What asyncpg raises on a pooled connection whose server went away meanwhile.
    asyncpg.InternalClientError,
    TimeoutError,
)

LISTEN_HEARTBEAT_SECONDS = 10.0


def free_lease(silent_after: str) -> str:
    """SQL: a row's lease (lease_owner, lease_expires_at) is free: it expired, or its
    holder has been silent for ``silent_after`` (a parameter) seconds: stopped, or
    killed without a word. Projects and webhook deliveries are leased alike."""
    return f"""
    (lease_expires_at < now()
     OR NOT EXISTS (SELECT 1 FROM replicas r
                    WHERE r.name = lease_owner AND r.heartbeat_at > now() - make_interval(secs => {silent_after})))
"""


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationEdited(CatalogError):
    """An applied migration's file no longer matches what was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("catalog_service.store.migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations, one transaction each, under an advisory lock.

    Two replicas starting together both call this; the second waits for the lock and
    then finds nothing left to do. Returns the names of the migrations applied.
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            );
            -- The SHA-256 of the file as applied (NULL for those applied before it was kept).
            ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text;
            """
        )
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in available_migrations():
            if migration.version in done:
                recorded = done[migration.version]
                if recorded is None:
                    await conn.execute(
                        "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                        migration.version,
                        migration.checksum,
                    )
                elif recorded != migration.checksum:
                    raise MigrationEdited(
                        f"migration {migration.name} was changed after it was applied to this "
                        "database; restore the file as it was, and put the change in a new "
                        "numbered migration"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied


def storable(value: Any) -> Any:
    """``value`` with every string made storable in PostgreSQL text and jsonb: NUL and
    unpaired surrogates become U+FFFD."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


async def ping(db: asyncpg.Pool) -> None:
    """One round trip: raises when the database cannot be reached."""
    await db.fetchval("SELECT 1")


# How long a round trip that succeeded speaks for the database.
FRESH_SECONDS = 1.0
# How long one may take before the database counts as unreachable.
PING_SECONDS = 3.0


class Liveness:
    """Whether the database answers, as health checks ask: one round trip at a time,
    shared by every check that arrives while it is on its way, and a success trusted
    for FRESH_SECONDS. Probes from several orchestrators and load balancers cost the
    database a query a second at most, and, while it is busy (a large ingestion on
    the same cores), a check waits for no query: at 500 checks a second each one's
    own `SELECT 1` queued behind the ingestion (p99 90 ms). A failure is never
    trusted: the next check asks again."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._answered_at = -float("inf")
        self._asking: asyncio.Task[None] | None = None

    @property
    def trusted(self) -> bool:
        """Whether the database answered within FRESH_SECONDS: a check returns at once."""
        return asyncio.get_running_loop().time() - self._answered_at < FRESH_SECONDS

    async def check(self) -> None:
        """Returns when the database answers; raises one of UNREACHABLE when it does not."""
        if self.trusted:
            return
        if self._asking is None:
            self._asking = asyncio.create_task(self._ask(), name="database-liveness")
            self._asking.add_done_callback(self._asked)
        # Shielded: a check that goes away does not cancel the others' round trip.
        await asyncio.shield(self._asking)

    async def _ask(self) -> None:
        async with asyncio.timeout(PING_SECONDS):
            await ping(self._pool)
        self._answered_at = asyncio.get_running_loop().time()

    def _asked(self, task: asyncio.Task[None]) -> None:
        self._asking = None
        if not task.cancelled():
            task.exception()  # retrieved here: every check waiting for it may have gone


async def listen_until_lost(
    dsn: str, channel: str, *, on_notify: Callable[[str], None], on_listening: Callable[[], None]
) -> None:
    """LISTEN on ``channel`` over a connection of its own, calling ``on_notify`` with the
    payload of every notification, until that connection is lost; then return. Raises
    when it cannot connect. A heartbeat notices a server that vanished without closing
    the socket."""
    lost = asyncio.Event()
    conn = await asyncpg.connect(dsn)
    try:
        conn.add_termination_listener(lambda _: lost.set())
        await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_notify(payload))
        on_listening()
        while not lost.is_set():
            try:
                async with asyncio.timeout(LISTEN_HEARTBEAT_SECONDS):
                    await lost.wait()
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=5)
    finally:
        if not conn.is_closed():
            conn.terminate()


async def init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def page_total(
    db: Executor,
    rows: list[Any],
    *,
    limit: int,
    offset: int,
    count: str,
    args: list[Any],
) -> int:
    """The total behind a page of ``rows``: a short page tells it; else ``count`` runs."""
    if rows and len(rows) < limit:
        return offset + len(rows)
    if not rows and offset == 0:
        return 0
    total: int = await db.fetchval(count, *args)
    return total


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before the next user: only a transaction left open.

    asyncpg's default reset is a round trip on every release (RESET ALL, UNLISTEN,
    advisory unlocks...), doubling the cost of a one-query request. Nothing here
    changes session state on pooled connections: transactions are context
    managers, and the migration lock is released explicitly.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


# A pool waits this long for its connections to come back when it closes.
CLOSE_SECONDS = 5.0


async def close_pool(pool: asyncpg.Pool, *, timeout: float = CLOSE_SECONDS) -> None:
    """Close ``pool``, waiting for its connections to be released, at most ``timeout``
    seconds: a connection a cancelled task never gave back held `serve` on SIGTERM
    until it was killed (and the embedded server with it, never stopped)."""
    try:
        # wait_for, not asyncio.timeout: this runs in a task being cancelled (the app's
        # cleanup after SIGTERM), where 3.11's timeout raises CancelledError instead
        # of TimeoutError and the pool would never be terminated.
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("connections still in use after %g s; the pool is closed by force", timeout)
        pool.terminate()


# Every query here is a short one. PostgreSQL's JIT (on by default where it is built
# in, as in Debian's and the official image's) compiled the claim for 60 ms when its
# estimate passed jit_above_cost on a much-updated projects table, for a query that
# ran in 12.
SESSION_SETTINGS = {"jit": "off"}


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=_reset,
        command_timeout=60,
        server_settings=SESSION_SETTINGS,
        # A connection dropped by a restarted server is noticed and replaced.
        max_inactive_connection_lifetime=60,
    )
    assert pool is not None
    return pool
