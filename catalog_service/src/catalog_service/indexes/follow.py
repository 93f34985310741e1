"""What the in-memory indexes share: following the catalog's changes.

An index is rebuilt from PostgreSQL when the response cache's generation moves (a
change a reader can see, announced by catalog_changed), once the catalog has been
quiet for a moment, and at least every REFRESH_SECONDS (when each API was last
checked changes without a notification, as in the response cache). Until a rebuild
has caught up with the latest change, or while the change listener is down, it
answers nothing and readers are served by PostgreSQL as before: an index never
answers with what it does not know to be current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..response_cache import ResponseCache

log = logging.getLogger(__name__)

# How often the loop looks at the cache's generation.
POLL_SECONDS = 0.25
# A rebuild waits until the catalog has been quiet this long...
QUIET_SECONDS = 0.5
# ...but no longer than this while it keeps changing (a big ingestion).
PATIENCE_SECONDS = 5.0
# Rebuilt at least this often; never served older than the response cache's entries.
REFRESH_SECONDS = 30.0


class Following:
    """Rebuilds itself as the catalog changes; ``current`` says whether it may answer."""

    name = "index"

    def __init__(self, cache: ResponseCache, *, max_age: float) -> None:
        self._cache = cache
        self._max_age = max_age
        # The generation the last rebuild began in, and when.
        self._built: tuple[str, float] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> bool:
        return self._built is not None and self._cache.listening and not self._stale(self._max_age)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def rebuild(self) -> None:
        # The generation before the queries: a change during them makes the result stale.
        generation, built_at = self._cache.generation, time.monotonic()
        await self._rebuild()
        self._built = (generation, built_at)

    async def _rebuild(self) -> None:
        raise NotImplementedError

    def _stale(self, max_age: float) -> bool:
        """Built before the latest change, or longer ago than ``max_age`` seconds."""
        assert self._built is not None
        generation, built_at = self._built
        return generation != self._cache.generation or time.monotonic() - built_at > max_age

    def _moves(self) -> object:
        """What moves with each change a rebuild waits out: the cache's generation."""
        return self._cache.generation

    async def _quiet(self) -> None:
        """Until the catalog has not changed for QUIET_SECONDS (at most PATIENCE_SECONDS)."""
        began = time.monotonic()
        while time.monotonic() - began < PATIENCE_SECONDS:
            seen = self._moves()
            await asyncio.sleep(QUIET_SECONDS)
            if seen == self._moves():
                return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self._cache.listening or (self._built is not None and not self._stale(REFRESH_SECONDS)):
                continue
            if self._built is not None and self._built[0] != self._cache.generation:
                await self._quiet()
            try:
                await self.rebuild()
            except Exception:  # noqa: BLE001 - readers then are served by PostgreSQL
                log.exception("%s not rebuilt", self.name)
                await asyncio.sleep(REFRESH_SECONDS)
