"""Cached catalog responses, dropped whenever PostgreSQL says the catalog changed.

Every change a reader can see fires NOTIFY catalog_changed (a trigger on projects,
naming the project), and every replica LISTENs: on each notification it starts a
new generation (and tells the catalog index which project changed), which
changes every catalog ETag and empties the cache. A response is cached under its
exact URL after connexion has validated the request and a handler has built it; a
later request for that URL is answered from memory (a 304 when its If-None-Match
matches), without connexion and without a query. While the listening connection
is down nothing is cached: ETags are then computed from the body, after the query.

A collection that finds nothing new changes only when the project was last checked:
no notification (the cache would otherwise be emptied every second or two by a
catalog of thousands). An entry is served for at most MAX_AGE_SECONDS, so that
timestamp lags by no more than that; its weak ETag stays, as RFC 9110 allows for a
representation that is the same in all that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
from multidict import CIMultiDict

from .store import db

log = logging.getLogger(__name__)

MAX_ENTRIES = 1024
MAX_BYTES = 64 * 1024 * 1024
MAX_ENTRY_BYTES = 8 * 1024 * 1024
MAX_AGE_SECONDS = 60.0
# The cache's generation when a request for a cached read began.
CACHE_GENERATION = web.RequestKey("cache_generation", str)
RECONNECT_SECONDS = 2.0
# Fired by a trigger on projects whenever something a reader can see changes.
CHANNEL = "catalog_changed"


@dataclass(frozen=True)
class Cached:
    etag: str
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    # When it was built (time.monotonic()).
    built_at: float = 0.0
    # The operation that built it, as the request metrics name it ("GET /api/catalog").
    operation: str = ""
    # The headers of the answers made of it before routing, made at the first
    # (middlewares.answer_cached_reads_first): its 304's and its 200's, or None when
    # its Content-Type is negotiated. In a list (empty until then): the entry is frozen.
    prepared: list[tuple[CIMultiDict[str], CIMultiDict[str]] | None] = field(
        default_factory=list, compare=False, repr=False
    )


# The answer a request for a cached read built, for the requests that waited for it.
BUILT = web.RequestKey("built", Cached)


def body_etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(request: web.Request, etag: str) -> bool:
    """Whether the request's If-None-Match names ``etag`` (weak comparison, RFC 9110)."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    if header == etag:
        return True  # the ETag sent back as it came: no need to parse the header
    candidates = request.if_none_match
    if not candidates:
        return False
    value = etag.removeprefix("W/").strip('"')
    return any(candidate.value in (ETAG_ANY, value) for candidate in candidates)


class ResponseCache:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._responses: OrderedDict[str, Cached] = OrderedDict()
        # (generation, key) -> the answer a request is building: requests for the same
        # page in the same generation wait for it (middlewares.cached_reads).
        self.building: dict[tuple[str, str], asyncio.Future[Cached | None]] = {}
        self._totals: dict[str, int] = {}
        self._bytes = 0
        self._generation = uuid.uuid4().hex[:16]
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        # Changes heard since this cache began (a notification, or listening again
        # after a gap), and who else is told of each: with the project it names, or
        # None when any may have changed.
        self.changes = 0
        self._watchers: list[Callable[[str | None], None]] = []

    def watch(self, watcher: Callable[[str | None], None]) -> None:
        """Tell ``watcher`` of every change from now on: the name of the project that
        changed, or None when any may have."""
        self._watchers.append(watcher)

    def _changed(self, name: str | None) -> None:
        self.invalidate()
        self.changes += 1
        for watcher in self._watchers:
            watcher(name)

    def _notified(self, payload: str) -> None:
        self._changed(payload or None)

    def invalidate(self) -> None:
        self._generation = uuid.uuid4().hex[:16]
        self._responses.clear()
        self._totals.clear()
        self._bytes = 0

    def total(self, key: str) -> int | None:
        """How many results a search has in all, while the catalog is unchanged: every
        page of the same search after the first costs one query, not two."""
        return self._totals.get(key) if self._listening else None

    def keep_total(self, key: str, total: int, *, generation: str | None) -> None:
        if not self._listening or generation != self._generation:
            return
        if len(self._totals) >= MAX_ENTRIES:
            self._totals.clear()
        self._totals[key] = total

    @property
    def listening(self) -> bool:
        """Whether changes are being heard: only then is anything kept."""
        return self._listening

    @property
    def generation(self) -> str:
        """Changes with every change a reader can see: a response built from a query
        that began in an older generation may be stale, and is not kept."""
        return self._generation

    def etag(self, key: str) -> str | None:
        """The ETag a response to ``key`` has now, or None when it cannot be known without a query."""
        if not self._listening:
            return None
        return 'W/"' + self._generation + "-" + hashlib.sha256(key.encode()).hexdigest()[:16] + '"'

    def get(self, key: str) -> Cached | None:
        cached = self._responses.get(key)
        if cached is not None and self._listening:
            if time.monotonic() - cached.built_at > MAX_AGE_SECONDS:
                return None
            self._responses.move_to_end(key)
            return cached
        return None

    def put(self, key: str, cached: Cached, *, generation: str | None, operation: str = "") -> None:
        """Keep ``cached``, built by a query that began in ``generation`` for
        ``operation``; not when the catalog changed since (nor while not listening)."""
        if not self._listening or generation != self._generation or len(cached.body) > MAX_ENTRY_BYTES:
            return
        # Built anew, not dataclasses.replace (its field introspection, on every miss).
        cached = Cached(
            etag=cached.etag,
            body=cached.body,
            content_type=cached.content_type,
            headers=cached.headers,
            built_at=time.monotonic(),
            operation=operation,
        )
        previous = self._responses.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous.body)
        self._responses[key] = cached
        self._bytes += len(cached.body)
        while len(self._responses) > MAX_ENTRIES or self._bytes > MAX_BYTES:
            _, evicted = self._responses.popitem(last=False)
            self._bytes -= len(evicted.body)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="catalog-listener")
        # Start with a trustworthy generation when the database answers at once.
        for _ in range(50):
            if self._listening:
                break
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _listening_now(self) -> None:
        self._changed(None)  # whatever happened while we were not listening
        self._listening = True

    async def _listen_forever(self) -> None:
        while True:
            try:
                await db.listen_until_lost(
                    self._dsn, CHANNEL, on_notify=self._notified, on_listening=self._listening_now
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: not listening
                log.warning("catalog change listener down: %s", type(exc).__name__)
            finally:
                self._listening = False
                self._changed(None)
            await asyncio.sleep(RECONNECT_SECONDS)
