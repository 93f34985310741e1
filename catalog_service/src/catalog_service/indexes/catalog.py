"""Every catalog entry in memory, as the JSON a page lists it with.

Readers page through the catalog with many different limits, offsets and filters;
the response cache only helps a URL asked twice. This index holds each entry once,
already serialised, in the database's order of names: any page of the catalog
without a full-text query (filtered by status, tag or score, or not at all) is a
slice of it, built without a query.

The entries lie one after the other in one bytes, a comma between two: a page of
the catalog unfiltered is one slice of it, copied once into the page (a list of
entries joined was two copies, and most of a page's own cost on a catalog whose
descriptions run long).

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
    # Its JSON, within the index's bytes.
    json: memoryview
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
        # Every entry's JSON, joined by commas; where each begins (and one past the end).
        self._joined = memoryview(b"")
        self._starts: tuple[int, ...] = (0,)

    def page(
        self, *, tag: str | None, status: str | None, min_score: int | None, limit: int, offset: int
    ) -> tuple[list[memoryview], int] | None:
        """The serialised entries of a page (a run of them, commas between, may come as
        one) and the total, or None when the index is not known to be current (then ask
        PostgreSQL)."""
        if not self.current:
            return None
        entries = self._entries
        if tag is None and status is None and min_score is None:
            first, end = min(offset, len(entries)), min(offset + limit, len(entries))
            if first == end:
                return [], len(entries)
            # Entries first..end-1, without the comma after the last.
            return [self._joined[self._starts[first] : self._starts[end] - 1]], len(entries)
        chosen = [
            entry
            for entry in entries
            if (status is None or entry.status == status)
            and (tag is None or tag in entry.tags)
            and (min_score is None or (entry.score is not None and entry.score >= min_score))
        ]
        return [entry.json for entry in chosen[offset : offset + limit]], len(chosen)

    async def _rebuild(self) -> None:
        rows = await store.all_entries(self._pool)
        before = {entry.name: entry for entry in self._entries}
        jsons: list[bytes | memoryview] = []
        fingerprints = []
        for i, row in enumerate(rows):
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # the event loop's turn
            fingerprint = _fingerprint(row)
            entry = before.get(row["name"])
            if entry is not None and entry.fingerprint == fingerprint:
                jsons.append(entry.json)
            else:
                jsons.append(orjson.dumps(self._serialise(row)))
            fingerprints.append(fingerprint)
        joined = memoryview(b",".join(jsons))
        starts, entries = [0], []
        for i, (row, json, fingerprint) in enumerate(zip(rows, jsons, fingerprints, strict=True)):
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
            start = starts[-1]
            starts.append(start + len(json) + 1)
            entries.append(
                Entry(
                    name=row["name"],
                    status=row["status"],
                    tags=frozenset(row["tags"]),
                    score=row["lint_score"],
                    json=joined[start : start + len(json)],
                    fingerprint=fingerprint,
                )
            )
        self._entries, self._joined, self._starts = tuple(entries), joined, tuple(starts)
