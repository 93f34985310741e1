"""Every catalog entry in memory, as the JSON a page lists it with.

Readers page through the catalog with many different limits, offsets and filters;
the response cache only helps a URL asked twice. This index holds each entry once,
already serialised, in the database's order of names: any page of the catalog
without a full-text query (filtered by status, tag or score, or not at all) is a
slice of it, built without a query.

It follows the catalog as every index here does (follow.py); a rebuild serialises
only the entries that changed since the last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..response_cache import ResponseCache
from ..store import catalog as store
from .follow import Following

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


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(map(_hashable, value))
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def _fingerprint(row: asyncpg.Record) -> int:
    return hash(tuple(map(_hashable, row.values())))


class CatalogIndex(Following):
    name = "catalog-index"

    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: ResponseCache,
        serialise: Callable[[asyncpg.Record], Any],
        *,
        max_age: float,
    ) -> None:
        super().__init__(cache, max_age=max_age)
        self._pool = pool
        self._serialise = serialise
        self._entries: tuple[Entry, ...] = ()

    def page(
        self, *, tag: str | None, status: str | None, min_score: int | None, limit: int, offset: int
    ) -> tuple[list[bytes], int] | None:
        """The serialised entries of a page and the total, or None when the index is
        not known to be current (then ask PostgreSQL)."""
        if not self.current:
            return None
        entries: tuple[Entry, ...] | list[Entry] = self._entries
        if tag is not None or status is not None or min_score is not None:
            entries = [
                entry
                for entry in entries
                if (status is None or entry.status == status)
                and (tag is None or tag in entry.tags)
                and (min_score is None or (entry.score is not None and entry.score >= min_score))
            ]
        return [entry.json for entry in entries[offset : offset + limit]], len(entries)

    async def _rebuild(self) -> None:
        rows = await store.all_entries(self._pool)
        before = {entry.name: entry for entry in self._entries}
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
                    # A copy of the exact length: orjson's bytes keep a 4 KB buffer.
                    json=bytes(memoryview(orjson.dumps(self._serialise(row)))),
                    fingerprint=fingerprint,
                )
            entries.append(entry)
        self._entries = tuple(entries)
