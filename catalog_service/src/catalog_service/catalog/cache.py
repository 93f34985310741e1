"""Cached catalog responses, dropped whenever PostgreSQL says the catalog changed.

Every change a reader can see fires NOTIFY catalog_changed (a trigger on projects),
and every replica LISTENs: on each notification it starts a new generation, which
changes every catalog ETag and empties the cache. A response is cached under its
exact URL after connexion has validated the request and a handler has built it; a
later request for that URL is answered from memory (a 304 when its If-None-Match
matches), without connexion and without a query. While the listening connection
is down nothing is cached: ETags are then computed from the body, after the query.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

MAX_ENTRIES = 1024
MAX_BYTES = 64 * 1024 * 1024
MAX_ENTRY_BYTES = 8 * 1024 * 1024
RECONNECT_SECONDS = 2.0


@dataclass(frozen=True)
class Cached:
    etag: str
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def body_etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {part.strip() for part in header.split(",")}
    # Weak comparison (RFC 9110): W/"x" and "x" match.
    return "*" in candidates or etag.removeprefix("W/") in {c.removeprefix("W/") for c in candidates}


class CatalogCache:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._responses: OrderedDict[str, Cached] = OrderedDict()
        self._bytes = 0
        self._generation = uuid.uuid4().hex[:16]
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        self._generation = uuid.uuid4().hex[:16]
        self._responses.clear()
        self._bytes = 0

    def etag(self, key: str) -> str | None:
        """The ETag a response to ``key`` has now, or None when it cannot be known without a query."""
        if not self._listening:
            return None
        return 'W/"' + self._generation + "-" + hashlib.sha256(key.encode()).hexdigest()[:16] + '"'

    def get(self, key: str) -> Cached | None:
        cached = self._responses.get(key)
        if cached is not None and self._listening:
            self._responses.move_to_end(key)
            return cached
        return None

    def put(self, key: str, cached: Cached) -> None:
        if not self._listening or len(cached.body) > MAX_ENTRY_BYTES:
            return
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

    def _notified(self, *_: Any) -> None:
        self.invalidate()

    async def _listen_forever(self) -> None:
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _: lost.set())
                await conn.add_listener("catalog_changed", self._notified)
                self.invalidate()  # whatever happened while we were not listening
                self._listening = True
                while not lost.is_set():
                    # A cheap heartbeat also notices a server that vanished silently.
                    try:
                        await asyncio.wait_for(lost.wait(), 10)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: not listening
                log.warning("catalog change listener down: %s", type(exc).__name__)
            finally:
                self._listening = False
                self.invalidate()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)
