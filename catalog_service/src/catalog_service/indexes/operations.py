"""Every published operation in memory, searchable as PostgreSQL searches them.

A search of the operations that misses the response cache was a full-text query:
with 1,000 APIs, 150 µs of PostgreSQL's CPU and a round trip for every search, far
more for a common word. This index holds each operation once, serialised, in the
order ``ORDER BY p.name, o.path, o.method`` gives them (their *ordinals*), and for
every lexeme of their search vectors the ordinals that hold it with what it adds to
their rank (ranking.py). A search is then a few array operations: the same matches,
order and total as the query's, which stays the way for whatever the index cannot
answer (a query shape ranking.py leaves to PostgreSQL, or while not current).

The reader's words become a tsquery, remembered per ``q`` as it depends on nothing
but the words. Plain words are made one here (textsearch/), once the server's
stemmers agreed with the service's on the calibration queries (at the first
rebuild); each is checked against PostgreSQL's own after the reader has been
answered, and one disagreement sends every further tsquery to PostgreSQL, the
reference. Other words go to PostgreSQL: the words of searches arriving together in
one round trip. A search's first matches stay ranked for its further pages, until
the next snapshot.

Documents are read once, when first published: a rebuild reads the list of
published documents and only the operations of those it does not hold yet, then
puts the arrays together in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
import orjson

from .. import textsearch
from ..memory import release_memory
from ..response_cache import ResponseCache
from ..store import catalog as store
from ..textsearch import Dialect
from . import ranking
from .follow import Following
from .ranking import Ordinals, Query, Terms

log = logging.getLogger(__name__)

# Documents whose operations are read in one query.
BATCH = 100
# Operations read between two yields to the event loop.
CHUNK = 200
# Words remembered as the tsquery PostgreSQL made of them.
QUERIES = 10_000
# Round trips for tsqueries on their way at once (of the pool's ten connections).
ROUND_TRIPS = 3
# Tsqueries made here are checked against PostgreSQL's this often, this many at once.
CHECK_SECONDS = 0.25
CHECKED_AT_ONCE = 1000
# A search's first this many matches are kept in order, for its further pages...
KEPT_IN_ORDER = 1000
# ...for this many searches, and this many matches in all (4 bytes each), at most.
ORDERS = 5000
ORDERED = 2_000_000
# The methods an operation can have, by code (uint8 in the index; 255: another).
CODES = {
    method: code
    for code, method in enumerate(("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"))
}


@dataclass(frozen=True, slots=True)
class Document:
    """The operations of one published document, in (path, method) order."""

    # Each operation as the JSON a page lists it with, one after the other in one
    # bytes: operation i is blob[bounds[i]:bounds[i + 1]]. (orjson's bytes hold a
    # 4 KB buffer however short the JSON: an object each cost 4 KB an operation.)
    blob: bytes
    bounds: np.ndarray  # int64, one more than the operations
    methods: np.ndarray  # uint8 codes
    # One row per (operation, lexeme), by operation: how many rows each operation
    # has, then each row's lexeme and term (as the code of its value: a few hundred
    # values cover millions of rows).
    counts: np.ndarray  # uint16 (uint32 past 65,535 lexemes), by operation
    lexemes: np.ndarray  # int32, in the index's vocabulary
    terms: np.ndarray  # uint16 (uint32 past 65,536 codes), codes in the index's term values


@dataclass(frozen=True)
class Snapshot:
    # Operation i is blobs[b][start:end] for (b, start, end) = where[i].
    blobs: Sequence[bytes]
    where: np.ndarray  # int64, (ordinals, 3)
    methods: np.ndarray  # uint8, by ordinal
    projects: dict[str, tuple[int, int]]  # name -> its ordinals' range
    # The postings, by lexeme: ordinals (ascending) from starts[i] to starts[i + 1],
    # with their terms' codes; the values of the codes.
    ordinals: np.ndarray
    terms: np.ndarray
    starts: np.ndarray
    term_values: np.ndarray  # float64, by code

    def __len__(self) -> int:
        return len(self.where)

    def items(self, ordinals: Ordinals) -> list[bytes]:
        """The serialised operations at ``ordinals``, in that order."""
        blobs = self.blobs
        return [blobs[blob][start:end] for blob, start, end in self.where[ordinals].tolist()]

    def postings(self, ids: dict[str, int], lexemes: Sequence[str]) -> dict[str, tuple[Ordinals, Terms]]:
        found = {}
        for lexeme in lexemes:
            i = ids.get(lexeme)
            if i is not None and i + 1 < len(self.starts):
                start, end = int(self.starts[i]), int(self.starts[i + 1])
                if end > start:
                    found[lexeme] = (self.ordinals[start:end], self.term_values[self.terms[start:end]])
        return found


class OperationIndex(Following):
    name = "operation-index"

    def __init__(self, pool: asyncpg.Pool, cache: ResponseCache, *, max_age: float) -> None:
        super().__init__(cache, max_age=max_age)
        self._pool = pool
        self._vocabulary: dict[str, int] = {}
        # The weights of a lexeme's positions -> a code; each code's term (ranking.term).
        self._term_codes: dict[str, int] = {}
        self._term_values: list[float] = []
        self._documents: dict[tuple[int, str], Document] = {}
        self._snapshot: Snapshot | None = None
        self._queries: OrderedDict[str, Query | None] = OrderedDict()
        # By (q, method, project): the first matches in order and how many there are,
        # in the current snapshot.
        self._orders: OrderedDict[tuple[str, str | None, str | None], tuple[Ordinals, int]] = OrderedDict()
        self._ordered = 0  # matches kept in all
        # Words waiting for their tsquery, each reader with a future of its own (one
        # that goes away cancels only its own); the words no round trip carries yet;
        # the round trips on their way.
        self._waiting: dict[str, list[asyncio.Future[Query | None]]] = {}
        self._unasked: list[str] = []
        self._asking: set[asyncio.Task[None]] = set()
        self._round_trips = asyncio.Semaphore(ROUND_TRIPS)
        # How the server's stemmers stem, once the calibration queries said it (None:
        # not asked yet, or they disagree: PostgreSQL makes every tsquery); the
        # tsqueries made here that PostgreSQL has not seen yet, by q.
        self._calibrated = False
        self._dialect: Dialect | None = None
        self._unchecked: dict[str, str] = {}

    async def page(
        self, *, q: str | None, method: str | None, project: str | None, limit: int, offset: int
    ) -> tuple[list[bytes], int] | None:
        """The serialised operations of a page and the total, or None when the index
        cannot answer (then ask PostgreSQL)."""
        if self._snapshot is None or not self.current:
            return None  # (before asking PostgreSQL for the tsquery it would not use)
        query = await self._query(q) if q else None
        snapshot = self._snapshot
        if (q and query is None) or not self.current:
            return None
        if q and (kept := self._ranked((q, method, project), offset + limit)) is not None:
            # Another page of a search ranked already (in this snapshot: see _rebuild).
            ranked, total = kept
            return snapshot.items(ranked[offset : offset + limit]), total
        found: Ordinals
        if query is not None:
            if query.root is None:
                return [], 0
            postings = snapshot.postings(self._vocabulary, query.lexemes)
            found = ranking.matches(query.root, postings, len(snapshot))
        if project is not None:
            start, end = snapshot.projects.get(project, (0, 0))
            found = (
                found[(found >= start) & (found < end)]
                if query is not None
                else np.arange(start, end, dtype=np.int32)
            )
        elif query is None:
            found = np.arange(len(snapshot), dtype=np.int32)
        if method is not None:
            found = found[snapshot.methods[found] == CODES.get(method.upper(), -1)]
        if q and query is not None:
            total = len(found)
            found = ranking.ordered(
                found,
                ranking.ranks(found, query.lexemes, postings, len(snapshot)),
                first=max(offset + limit, KEPT_IN_ORDER),
            )
            self._keep_order((q, method, project), found, total)
            return snapshot.items(found[offset : offset + limit]), total
        return snapshot.items(found[offset : offset + limit]), len(found)

    def _ranked(self, search: tuple[str, str | None, str | None], end: int) -> tuple[Ordinals, int] | None:
        """The matches of a search already ranked, when they reach ``end``."""
        kept = self._orders.get(search)
        if kept is None or (end > len(kept[0]) and len(kept[0]) < kept[1]):
            return None
        self._orders.move_to_end(search)
        return kept

    def _keep_order(self, search: tuple[str, str | None, str | None], found: Ordinals, total: int) -> None:
        previous = self._orders.pop(search, None)
        self._ordered += len(found) - (len(previous[0]) if previous is not None else 0)
        self._orders[search] = (found, total)
        while len(self._orders) > ORDERS or self._ordered > ORDERED:
            _, (evicted, _) = self._orders.popitem(last=False)
            self._ordered -= len(evicted)

    async def _query(self, q: str) -> Query | None:
        if q in self._queries:
            self._queries.move_to_end(q)
            return self._queries[q]
        if (
            self._dialect is not None
            and len(self._unchecked) < QUERIES  # (not while PostgreSQL cannot check them)
            and (text := textsearch.catalog_tsquery(q, self._dialect)) is not None
        ):
            query = self._remember(q, ranking.parse(text))
            self._unchecked[q] = text
            if len(self._unchecked) == 1:  # the first since a check last set out
                self._spawn(self._check(), "operation-index-checks")
            return query
        future: asyncio.Future[Query | None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(q)
        if waiting is not None:
            waiting.append(future)
        else:
            self._waiting[q] = [future]
            self._unasked.append(q)
            if len(self._unasked) == 1:  # the first word since a round trip last set out
                self._spawn(self._ask(), "operation-index-tsqueries")
        return await future

    async def _ask(self) -> None:
        """PostgreSQL makes the tsqueries of the words asked for since the last round
        trip set out, in one: under a stream of new words a search waited for a
        connection of the pool, then for a query of its own (p99 170 ms on the
        corpus). Up to ROUND_TRIPS go side by side: a word never waits for another
        round trip to come back before its own sets out, unless that many are out."""
        async with self._round_trips:
            words, self._unasked = self._unasked, []
            if not words:
                return  # a round trip that set out before this one took them
            try:
                texts = await store.tsqueries(self._pool, words)
            except asyncio.CancelledError:
                for q in words:
                    for future in self._waiting.pop(q, []):
                        future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each waiter gets it, as from a query of its own
                for q in words:
                    for future in self._waiting.pop(q, []):
                        if not future.done():  # (a reader that went away: cancelled)
                            future.set_exception(exc)
                return
        for q in words:
            waiters = self._waiting.pop(q, [])
            try:
                query = ranking.parse(texts[q])
            except Exception as exc:  # noqa: BLE001 - a waiter never waits for ever
                for future in waiters:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._remember(q, query)
            for future in waiters:
                if not future.done():
                    future.set_result(query)

    def _remember(self, q: str, query: Query | None) -> Query | None:
        """Keep the tsquery of ``q`` (QUERIES at most, the least recently used go)."""
        self._queries[q] = query
        while len(self._queries) > QUERIES:
            self._queries.popitem(last=False)
        return query

    def _spawn(self, work: Coroutine[None, None, None], name: str) -> None:
        """Run ``work`` beside the readers; close() cancels it."""
        task = asyncio.create_task(work, name=name)
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    async def _calibrate(self) -> None:
        """Whether the tsqueries made here are the server's: its own of the calibration
        queries decide (one round trip, at the first rebuild)."""
        self._dialect = textsearch.agreeing(await store.tsqueries(self._pool, textsearch.calibration()))
        self._calibrated = True
        if self._dialect is None:
            log.info("PostgreSQL's stemmers are not the service's: PostgreSQL makes every tsquery")

    async def _check(self) -> None:
        """PostgreSQL's tsqueries of the words whose tsquery was made here, a moment later
        and many at once, off the readers' way. Where one differs, the server's
        stemmers are not the service's after all: PostgreSQL makes every tsquery from
        then on, and what was answered with the tsqueries made here is forgotten (the
        searches ranked, the pages cached)."""
        while self._unchecked:
            await asyncio.sleep(CHECK_SECONDS)
            words = dict(list(self._unchecked.items())[:CHECKED_AT_ONCE])
            try:
                texts = await store.tsqueries(self._pool, list(words))
            except Exception:  # noqa: BLE001 - checked on the next round
                log.warning("tsqueries made here not checked yet", exc_info=True)
                await asyncio.sleep(5)
                continue
            for q in words:
                self._unchecked.pop(q, None)
            wrong = [q for q, text in words.items() if texts.get(q) != text]
            if wrong:
                log.warning(
                    "PostgreSQL's tsquery of %r is %r, not %r: PostgreSQL makes every tsquery from now on",
                    wrong[0],
                    texts.get(wrong[0]),
                    words[wrong[0]],
                )
                self._dialect = None
                self._unchecked.clear()
                self._queries.clear()
                self._orders, self._ordered = OrderedDict(), 0
                self._cache.invalidate()

    async def close(self) -> None:
        for task in list(self._asking):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().close()

    async def _rebuild(self) -> None:
        if not self._calibrated:
            await self._calibrate()
        published = await store.published_documents(self._pool)
        wanted = [(row["document_id"], row["name"]) for row in published]
        if self._snapshot is not None and wanted == list(self._documents):
            return  # the same documents: the arrays stand (put together, they cost CPU)
        missing = [key for key in wanted if key not in self._documents]
        for i in range(0, len(missing), BATCH):
            batch = dict(missing[i : i + BATCH])
            rows: dict[int, list[asyncpg.Record]] = {document_id: [] for document_id in batch}
            async for row in store.operations_of(self._pool, list(batch)):
                rows[row["document_id"]].append(row)
            for document_id, name in batch.items():
                self._documents[(document_id, name)] = await self._read(name, rows[document_id])
        self._documents = {key: self._documents[key] for key in wanted}
        documents = [(name, self._documents[(document_id, name)]) for document_id, name in wanted]
        snapshot = await asyncio.to_thread(
            _assemble, documents, len(self._vocabulary), np.array(self._term_values, dtype=np.float64)
        )
        # The orders kept are of the snapshot before.
        self._snapshot, self._orders, self._ordered = snapshot, OrderedDict(), 0
        # What assembling left free (the sorts' temporaries, the rows read) goes back to
        # the system: glibc would keep it, in the thread's arena (100 MB at 1,000 APIs).
        await asyncio.to_thread(release_memory)

    def _term_code(self, weights: str) -> int:
        """The code of what a lexeme with positions of these weights adds to a rank."""
        code = self._term_codes.get(weights)
        if code is None:
            code = self._term_codes[weights] = len(self._term_values)
            self._term_values.append(ranking.term(weights))
        return code

    async def _read(self, name: str, rows: list[asyncpg.Record]) -> Document:
        blob, bounds = bytearray(), [0]
        methods, counts, lexemes, terms = [], [], [], []
        vocabulary = self._vocabulary
        for local, row in enumerate(rows):
            if local % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # the event loop's turn
            blob += orjson.dumps(
                {
                    "project": name,
                    "method": row["method"],
                    "path": row["path"],
                    "operation_id": row["operation_id"],
                    "summary": row["summary"],
                    "deprecated": row["deprecated"],
                }
            )
            bounds.append(len(blob))
            methods.append(CODES.get(row["method"], 255))
            counts.append(len(row["lexemes"]))
            for lexeme, weights in zip(row["lexemes"], row["weights"], strict=True):
                lexemes.append(vocabulary.setdefault(lexeme, len(vocabulary)))
                terms.append(self._term_code(weights))
        return Document(
            blob=bytes(blob),
            bounds=np.array(bounds, dtype=np.int64),
            methods=np.array(methods, dtype=np.uint8),
            counts=np.array(counts, dtype=_smallest(max(counts, default=0))),
            lexemes=np.array(lexemes, dtype=np.int32),
            terms=np.array(terms, dtype=_smallest(len(self._term_values))),
        )


def _smallest(largest: int) -> type:
    """The unsigned integer type for values up to ``largest``."""
    return np.uint16 if largest < 2**16 else np.uint32


def _assemble(documents: list[tuple[str, Document]], vocabulary: int, term_values: np.ndarray) -> Snapshot:
    """The documents' operations one after the other (their ordinals), and every
    lexeme's postings in one array, by lexeme then ordinal."""
    projects: dict[str, tuple[int, int]] = {}
    bases, total = [], 0
    for name, document in documents:
        count = len(document.methods)
        projects[name] = (total, total + count)
        bases.append(total)
        total += count

    def joined(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

    ordinals = joined(
        [
            np.repeat(np.arange(base, base + len(d.counts), dtype=np.int32), d.counts)
            for (_, d), base in zip(documents, bases, strict=True)
        ],
        np.int32,
    )
    lexemes = joined([d.lexemes for _, d in documents], np.int32)
    terms = joined([d.terms.astype(np.uint32) for _, d in documents], np.uint32)
    order = np.lexsort((ordinals, lexemes))
    return Snapshot(
        blobs=[d.blob for _, d in documents],
        where=np.column_stack(
            (
                joined(
                    [np.full(len(d.methods), i, dtype=np.int64) for i, (_, d) in enumerate(documents)],
                    np.int64,
                ),
                joined([d.bounds[:-1] for _, d in documents], np.int64),
                joined([d.bounds[1:] for _, d in documents], np.int64),
            )
        ),
        methods=joined([d.methods for _, d in documents], np.uint8),
        projects=projects,
        ordinals=ordinals[order].astype(np.int32),
        terms=terms[order].astype(np.uint16 if len(term_values) <= 2**16 else np.uint32),
        starts=np.concatenate(([0], np.cumsum(np.bincount(lexemes, minlength=vocabulary)))).astype(np.int64),
        term_values=term_values,
    )
