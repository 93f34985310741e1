"""Every catalog entry in memory, as the JSON a page lists it with.

Readers page through the catalog with many different limits, offsets and filters;
the response cache only helps a URL asked twice. This index holds each entry once,
already serialised, in the database's order of names: any page of the catalog
without a full-text query (filtered by status, tag or score, or not at all) is a
slice of it, built without a query.

It is rebuilt from PostgreSQL when the response cache's generation moves (a change a
reader can see, announced by catalog_changed), once the catalog has been quiet for
a moment, and at least every REFRESH_SECONDS (for when each API was last checked,
which changes without a notification, as in the response cache). Until a rebuild
has caught up with the latest change, or while the change listener is down, pages
come from PostgreSQL as before: the index never answers with what it does not know
to be current. A rebuild serialises only the entries that changed since the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from .response_cache import ResponseCache
from .store import catalog as store

log = logging.getLogger(__name__)

# How often the loop looks at the cache's generation.
POLL_SECONDS = 0.25
# A rebuild waits until the catalog has been quiet this long...
QUIET_SECONDS = 0.5
# ...but no longer than this while it keeps changing (a big ingestion).
PATIENCE_SECONDS = 5.0
# Rebuilt at least this often; never served older than the response cache's entries.
REFRESH_SECONDS = 30.0
# Entries serialised between two yields to the event loop.
CHUNK = 250


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    status: str
    tags: frozenset[str]
    score: int | None
    json: bytes
    # Of the row it was built from: unchanged rows are not serialised again.
    fingerprint: int


@dataclass(frozen=True)
class Snapshot:
    entries: Sequence[Entry]
    generation: str
    built_at: float


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(map(_hashable, value))
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def _fingerprint(row: asyncpg.Record) -> int:
    return hash(tuple(map(_hashable, row.values())))


class CatalogIndex:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: ResponseCache,
        serialise: Callable[[asyncpg.Record], Any],
        *,
        max_age: float,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._serialise = serialise
        self._max_age = max_age
        self._snapshot: Snapshot | None = None
        self._task: asyncio.Task[None] | None = None

    def page(
        self, *, tag: str | None, status: str | None, min_score: int | None, limit: int, offset: int
    ) -> tuple[list[bytes], int] | None:
        """The serialised entries of a page and the total, or None when the index is
        not known to be current (then ask PostgreSQL)."""
        snapshot = self._snapshot
        if snapshot is None or not self._cache.listening or self._stale(snapshot, self._max_age):
            return None
        entries = snapshot.entries
        if tag is not None or status is not None or min_score is not None:
            entries = [
                entry
                for entry in entries
                if (status is None or entry.status == status)
                and (tag is None or tag in entry.tags)
                and (min_score is None or (entry.score is not None and entry.score >= min_score))
            ]
        return [entry.json for entry in entries[offset : offset + limit]], len(entries)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="catalog-index")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _stale(self, snapshot: Snapshot, max_age: float) -> bool:
        """Built before the latest change, or longer ago than ``max_age`` seconds."""
        return snapshot.generation != self._cache.generation or time.monotonic() - snapshot.built_at > max_age

    async def _quiet(self) -> None:
        """Until the catalog has not changed for QUIET_SECONDS (at most PATIENCE_SECONDS)."""
        began = time.monotonic()
        while time.monotonic() - began < PATIENCE_SECONDS:
            generation = self._cache.generation
            await asyncio.sleep(QUIET_SECONDS)
            if generation == self._cache.generation:
                return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            snapshot = self._snapshot
            if not self._cache.listening or (
                snapshot is not None and not self._stale(snapshot, REFRESH_SECONDS)
            ):
                continue
            if snapshot is not None and snapshot.generation != self._cache.generation:
                await self._quiet()
            try:
                await self.rebuild()
            except Exception:  # noqa: BLE001 - pages then come from PostgreSQL
                log.exception("catalog index not rebuilt")
                await asyncio.sleep(REFRESH_SECONDS)

    async def rebuild(self) -> None:
        # The generation before the query: a change during it makes the result stale.
        generation = self._cache.generation
        built_at = time.monotonic()
        rows = await store.all_entries(self._pool)
        before = {entry.name: entry for entry in self._snapshot.entries} if self._snapshot else {}
        entries = []
        for i, row in enumerate(rows):
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # the event loop's turn
            fingerprint = _fingerprint(row)
            entry = before.get(row["name"])
            if entry is None or entry.fingerprint != fingerprint:
                entry = Entry(
                    name=row["name"],
                    status=row["status"],
                    tags=frozenset(row["tags"]),
                    score=row["lint_score"],
                    json=orjson.dumps(self._serialise(row)),
                    fingerprint=fingerprint,
                )
            entries.append(entry)
        self._snapshot = Snapshot(tuple(entries), generation, built_at)
