"""Sending the outbox: whichever replica leases a delivery sends it, through the same
network policy and limits as the collector's downloads, and records what came of it.

A delivery is retried with exponential back-off until CATALOG_WEBHOOK_RETRY_FOR has
passed since it was written, then marked failed. Its webhook-id is the same on every
attempt: a receiver that got it twice (a replica killed after sending, before
recording) can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg

from ..collector.fetch import NetworkFailure, NetworkPolicy, create_session, guarded
from ..collector.service import SILENT_AFTER_SECONDS, STORE_ERRORS
from ..metrics import Metrics
from ..settings import Settings
from ..store import webhooks as store
from ..urls import redacted
from . import signing

log = logging.getLogger(__name__)

USER_AGENT = "catalog-service/0.1 (webhooks; https://www.standardwebhooks.com/)"
# Deliveries one replica sends at once.
CONCURRENCY = 8
# How often an idle replica looks for deliveries other replicas wrote or let go.
POLL_SECONDS = 1.0
# Retries back off from CATALOG_WEBHOOK_RETRY_SECONDS, doubling up to this.
MAX_BACKOFF = 3600.0
# Deliveries done with are shown this long, then forgotten (looked for this often).
KEEP_DELIVERIES_DAYS = 30
PRUNE_SECONDS = 3600.0


class Deliverer:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: Settings,
        metrics: Metrics,
        replica: str,
        session: aiohttp.ClientSession,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.replica = replica
        self.session = session
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Events were written here: look now, not at the next poll."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones."""
        delay: float = min(self.settings.webhook_retry_seconds * 2.0 ** min(attempts - 1, 20), MAX_BACKOFF)
        return delay * random.uniform(0.9, 1.0)

    async def run(self) -> None:
        """Send due deliveries until cancelled, at most CONCURRENCY at once."""
        lease = self.settings.webhook_timeout + 30.0
        # Hourly, the first time an hour after start (one replica pruning serves them all).
        pruned_at = time.monotonic()
        while True:
            self._wake.clear()
            if time.monotonic() - pruned_at > PRUNE_SECONDS:
                pruned_at = time.monotonic()
                with contextlib.suppress(*STORE_ERRORS):
                    await store.prune_deliveries(self.pool, older_than_days=KEEP_DELIVERIES_DAYS)
            free = CONCURRENCY - len(self._running)
            if free > 0:
                try:
                    due = await store.claim_due(
                        self.pool,
                        replica=self.replica,
                        limit=free,
                        lease_seconds=lease,
                        silent_after=SILENT_AFTER_SECONDS,
                    )
                except STORE_ERRORS as exc:
                    log.warning("cannot claim webhook deliveries: %s: %s", type(exc).__name__, str(exc)[:200])
                    due = []
                for row in due:
                    task = asyncio.create_task(self.send(row), name=f"webhook {row['id']}")
                    self._running.add(task)
                    task.add_done_callback(self._done)
                if due and len(due) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a webhook delivery crashed", exc_info=task.exception())
        self._wake.set()

    async def send(self, row: asyncpg.Record) -> None:
        """One attempt at one delivery, and its outcome recorded."""
        url, body = row["url"], row["body"]
        headers = signing.headers(row["secret"], message_id=row["id"], timestamp=int(time.time()), body=body)
        headers["User-Agent"] = USER_AGENT
        http_status: int | None = None
        try:
            async with (
                guarded(url, timeout=self.settings.webhook_timeout, what="delivery"),
                self.session.post(
                    url, data=body.encode(), headers=headers, allow_redirects=False
                ) as response,
            ):
                http_status = response.status
            delivered = 200 <= http_status < 300
            error = None if delivered else f"HTTP {http_status} {response.reason or ''}".strip()
        except NetworkFailure as failure:
            delivered, error, http_status = False, failure.error, failure.http_status
        try:
            status = await store.record_attempt(
                self.pool,
                delivery_id=row["id"],
                replica=self.replica,
                delivered=delivered,
                http_status=http_status,
                error=error,
                retry_after=self.backoff(row["attempts"] + 1),
            )
        except STORE_ERRORS as exc:
            # The lease runs out and another attempt is made: sent twice, same webhook-id.
            log.warning("cannot record webhook delivery %s: %s", row["id"], type(exc).__name__)
            return
        outcome = "delivered" if delivered else ("failed" if status == "failed" else "retry")
        self.metrics.webhook_deliveries.labels(outcome=outcome).inc()
        log.info(
            "webhook %s %s to %s: %s%s",
            row["id"],
            row["type"],
            redacted(url),
            outcome,
            f" ({error})" if error else "",
        )

    async def stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        with contextlib.suppress(*STORE_ERRORS):
            await store.release_deliveries(self.pool, replica=self.replica)


@contextlib.asynccontextmanager
async def open_deliverer(
    pool: asyncpg.Pool, settings: Settings, metrics: Metrics, *, replica: str, run: bool = True
) -> AsyncIterator[Deliverer]:
    """A deliverer sending as ``replica`` (the collector's name: its heartbeat keeps the
    leases alive), with an HTTP session of its own under the network policy; on the
    way out, what it was sending is handed back, due at once."""
    session = create_session(NetworkPolicy(settings.allowed_networks))
    deliverer = Deliverer(pool=pool, settings=settings, metrics=metrics, replica=replica, session=session)
    loop = asyncio.create_task(deliverer.run(), name="webhooks") if run else None
    try:
        yield deliverer
    finally:
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await deliverer.stop()
        await session.close()
