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

It follows the catalog as every index here does (follow.py), with one difference:
each catalog_changed notification names its project, whose entry is read again
alone and spliced in, within a round trip; a new project goes after the name
PostgreSQL puts before it (the database's collation orders names, not Python's).
While the catalog keeps changing (an ingestion of thousands of APIs) the index
stays current, where a rebuild waited for the catalog to be quiet and readers all
went to PostgreSQL meanwhile. A reader arriving while changes heard less than
BEHIND_SECONDS ago are being read is answered from what the index holds, at once:
under a large ingestion a change came every few milliseconds, and readers waiting
for each round trip to a busy database queued behind it. Pages built meanwhile are
cached as any others, and the response cache is emptied once the index holds the
changes they lacked, so that no page and no ETag outlives them. A reader arriving
when the index is further behind waits for it, briefly (then PostgreSQL answers).
A change that names nothing (or the listener coming back) or a failure rebuilds
it whole, as does the age of the entries (when each API was last checked changes
without a notification); a rebuild serialises only the entries that changed since
the last.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..response_cache import ResponseCache
from ..store import catalog as store
from .follow import POLL_SECONDS, REFRESH_SECONDS, Following

log = logging.getLogger(__name__)

# Entries serialised between two yields to the event loop.
CHUNK = 250
# How long a reader waits for the index to read a change it has heard of (then
# PostgreSQL answers it).
CATCH_UP_SECONDS = 0.5
# How long ago the changes the index has heard of and not read yet may have come
# for a reader to be answered from what it holds, without waiting.
BEHIND_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    status: str
    tags: frozenset[str]
    score: int | None
    # Its JSON: a view into the index's joined bytes (its own bytes once changed,
    # until they are joined again).
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
    # Of the entry's own columns (a patch's rows have one more: the name before it).
    return hash(tuple(_hashable(value) for key, value in row.items() if key != "preceding"))


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
        self._entries: list[Entry] = []
        self._position: dict[str, int] = {}
        # Every entry's JSON, joined by commas; where each begins (and one past the
        # end). None since a change was spliced in: joined again once the catalog is
        # quiet for a moment (a page is a run of entries meanwhile).
        self._joined: memoryview | None = memoryview(b"")
        self._starts: list[int] = [0]
        # The entries of each status, in the same order.
        self._by_status: dict[str, list[Entry]] = {}
        # How many of the cache's changes the index holds; the projects named by
        # those it has heard of and not read yet; whether one named none.
        self._holds = -1
        self._named: set[str] = set()
        self._unknown = True
        self._unknown_changes = 0
        self._heard = asyncio.Event()
        # Each change heard and not held yet (its number among the cache's changes),
        # with when it was heard; whether a page was served without them.
        self._unread: deque[tuple[int, float]] = deque()
        self._served_behind = False
        # Readers waiting for the index to hold so many changes.
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        cache.watch(self._hear)

    def _hear(self, name: str | None) -> None:
        self._unread.append((self._cache.changes, time.monotonic()))
        if name is None:
            # Anything may have changed: rebuilt whole.
            self._unknown_changes += 1
            self._rebuild_whole()
        else:
            self._named.add(name)
        self._heard.set()

    def _rebuild_whole(self) -> None:
        """The next turn rebuilds the index whole; readers waiting for it are served
        by PostgreSQL meanwhile."""
        self._unknown = True
        for _, future in self._waiting:
            if not future.done():
                future.set_result(None)
        self._waiting = []

    def _moves(self) -> object:
        # Changes to projects the index holds are read as they come: only those that
        # need a whole rebuild hold one back until the catalog is quiet.
        return self._unknown_changes

    @property
    def current(self) -> bool:
        return self._current(self._cache.changes)

    def _current(self, changes: int) -> bool:
        """Whether the index holds the first ``changes`` changes, and is recent enough."""
        return (
            self._built is not None
            and self._cache.listening
            and self._holds >= changes
            and time.monotonic() - self._built[1] <= self._max_age
        )

    def nearly_current(self) -> int | None:
        """The changes the index holds, to ask ``page`` with, when every change heard
        and not read yet came less than BEHIND_SECONDS ago; else None. Asking notes
        that a page lagging them may be served (and cached): the cache is emptied
        again once the index holds the changes it lacked."""
        if self._built is None or self._unknown or not self._unread or not self._current(self._holds):
            return None
        if time.monotonic() - self._unread[0][1] > BEHIND_SECONDS:
            return None
        self._served_behind = True
        return self._holds

    async def caught_up(self) -> int | None:
        """Wait (at most CATCH_UP_SECONDS) until the index holds every change heard so
        far; those changes, to ask ``page`` with, or None when it does not."""
        changes = self._cache.changes
        if self._current(changes):
            return changes
        if self._built is None or self._unknown or not self._current(self._holds):
            return None  # rebuilt whole first: PostgreSQL answers meanwhile
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((changes, future))
        try:
            async with asyncio.timeout(CATCH_UP_SECONDS):
                await future
        except TimeoutError:
            return None
        return changes if self._current(changes) else None

    def page(
        self,
        *,
        tag: str | None,
        status: str | None,
        min_score: int | None,
        limit: int,
        offset: int,
        changes: int | None = None,
    ) -> tuple[list[memoryview], int] | None:
        """The serialised entries of a page (a run of them, commas between, may come as
        one) and the total, or None when the index does not hold every change (the
        first ``changes``, if given) and is recent (then ask PostgreSQL)."""
        if not self._current(self._cache.changes if changes is None else changes):
            return None
        entries = self._entries
        if tag is None and min_score is None:
            # One status, or all: a run of entries, without looking at the others.
            chosen = entries if status is None else self._by_status.get(status, [])
            first, end = min(offset, len(chosen)), min(offset + limit, len(chosen))
            if status is None and self._joined is not None and first < end:
                # Entries first..end-1, without the comma after the last.
                return [self._joined[self._starts[first] : self._starts[end] - 1]], len(chosen)
            return [entry.json for entry in chosen[first:end]], len(chosen)
        chosen = [
            entry
            for entry in entries
            if (status is None or entry.status == status)
            and (tag is None or tag in entry.tags)
            and (min_score is None or (entry.score is not None and entry.score >= min_score))
        ]
        return [entry.json for entry in chosen[offset : offset + limit]], len(chosen)

    def _now_holds(self, changes: int) -> None:
        self._holds = changes
        while self._unread and self._unread[0][0] <= changes:
            self._unread.popleft()
        if self._served_behind:
            # Pages (and their ETags) without the changes just read go.
            self._served_behind = False
            self._cache.invalidate()
        waiting = []
        for needed, future in self._waiting:
            if future.done():
                continue
            if needed <= changes:
                future.set_result(None)
            else:
                waiting.append((needed, future))
        self._waiting = waiting

    async def rebuild(self) -> None:
        # Every change heard before the queries is in what they read.
        changes = self._cache.changes
        self._unknown, self._named = False, set()
        try:
            await super().rebuild()
        except BaseException:
            self._rebuild_whole()
            raise
        self._now_holds(changes)

    async def _rebuild(self) -> None:
        rows = await store.all_entries(self._pool)
        before = {entry.name: entry for entry in self._entries}
        entries: list[Entry] = []
        for i, row in enumerate(rows):
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # the event loop's turn
            fingerprint = _fingerprint(row)
            entry = before.get(row["name"])
            if entry is None or entry.fingerprint != fingerprint:
                entry = self._entry(row, fingerprint)
            entries.append(entry)
        await self._join(entries)

    def _entry(self, row: asyncpg.Record, fingerprint: int) -> Entry:
        return Entry(
            name=row["name"],
            status=row["status"],
            tags=frozenset(row["tags"]),
            score=row["lint_score"],
            json=memoryview(orjson.dumps(self._serialise(row))),
            fingerprint=fingerprint,
        )

    async def _patch(self) -> None:
        """Read again the projects the latest changes name, and splice them in: a
        change costs its own rows, not the catalog's. A new project goes after the
        name PostgreSQL puts before it (its collation orders names, not Python)."""
        changes, names = self._cache.changes, self._named
        self._named = set()
        try:
            rows = await store.named_entries(self._pool, sorted(names))
        except BaseException:
            self._rebuild_whole()  # what they were is lost with the query
            raise
        entries, position = self._entries, self._position
        new: list[asyncpg.Record] = []
        for row in rows:
            i = position.get(row["name"])
            if i is None:
                new.append(row)
                continue
            fingerprint = _fingerprint(row)
            if fingerprint != entries[i].fingerprint:
                self._replace(i, self._entry(row, fingerprint))
        gone = names - {row["name"] for row in rows}
        deferred: set[str] = set()
        if gone or new:
            kept = [entry for entry in entries if entry.name not in gone]
            # New entries by the entry they follow (None: the first of all).
            following: dict[str | None, list[Entry]] = {}
            held = {entry.name for entry in kept}
            chain: dict[str, str | None] = {}
            for row in new:  # in the order of names
                before = row["preceding"]
                if before is None or before in held:
                    key = before
                elif before in chain:
                    key = chain[before]
                else:
                    # It follows a project whose change is still on its way (or went
                    # meanwhile): both are read again, at once.
                    deferred.update((row["name"], before))
                    continue
                chain[row["name"]] = key
                following.setdefault(key, []).append(self._entry(row, _fingerprint(row)))
            self._entries = [
                *following.get(None, ()),
                *(item for entry in kept for item in (entry, *following.get(entry.name, ()))),
            ]
            self._reindex()
            self._joined = None
        if deferred:
            self._named |= deferred
            self._heard.set()
        else:
            self._now_holds(changes)

    def _replace(self, i: int, entry: Entry) -> None:
        """Entry ``i`` changed (its name did not): in its place, and among its status's."""
        old, self._entries[i] = self._entries[i], entry
        self._joined = None

        def where(entry: Entry) -> int:
            return self._position[entry.name]

        before = self._by_status[old.status]
        at = bisect.bisect_left(before, i, key=where)
        if old.status == entry.status:
            before[at] = entry
            return
        del before[at]
        after = self._by_status.setdefault(entry.status, [])
        after.insert(bisect.bisect_left(after, i, key=where), entry)

    def _reindex(self) -> None:
        """Where each entry is, and the entries of each status, after entries came or went."""
        self._position = {entry.name: i for i, entry in enumerate(self._entries)}
        by_status: dict[str, list[Entry]] = {}
        for entry in self._entries:
            by_status.setdefault(entry.status, []).append(entry)
        self._by_status = by_status

    async def _join(self, entries: Sequence[Entry]) -> None:
        """``entries`` become the index, their JSON joined in one bytes (each entry's
        then a view into it: held once)."""
        joined = memoryview(b",".join([entry.json for entry in entries]))
        starts, joined_entries = [0], []
        for i, entry in enumerate(entries):
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
            start = starts[-1]
            size = len(entry.json)
            starts.append(start + size + 1)
            joined_entries.append(
                Entry(
                    entry.name,
                    entry.status,
                    entry.tags,
                    entry.score,
                    joined[start : start + size],
                    entry.fingerprint,
                )
            )
        self._entries, self._joined, self._starts = joined_entries, joined, starts
        self._reindex()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._heard.wait()
            self._heard.clear()
            if not self._cache.listening:
                continue
            try:
                if (
                    self._built is None
                    or self._unknown
                    or time.monotonic() - self._built[1] > REFRESH_SECONDS
                ):
                    if self._built is not None and self._unknown:
                        await self._quiet()
                    await self.rebuild()
                elif self._named:
                    await self._patch()
                elif self._joined is None:
                    # Quiet for a moment after changes: an unfiltered page is one slice again.
                    await self._join(self._entries)
            except Exception:  # noqa: BLE001 - readers then are served by PostgreSQL
                log.exception("%s not rebuilt", self.name)
                self._rebuild_whole()
                await asyncio.sleep(REFRESH_SECONDS)
