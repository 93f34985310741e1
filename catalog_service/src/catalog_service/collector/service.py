"""One collection (fetch -> parse -> validate -> store) and the loop that schedules them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urldefrag

import aiohttp
import asyncpg

from .. import lint
from ..domain import Analysis, Job, Result, TransientFailure, ValidationError
from ..memory import release_memory
from ..metrics import Metrics
from ..settings import Settings
from ..store import queue as store
from ..store.db import UNREACHABLE
from ..urls import redacted
from ..webhooks import events as webhook_events
from . import bundle as bundling
from .fetch import Fetched, NetworkPolicy, create_session, fetch
from .records import Records
from .workers import RETIRE_AFTER_BYTES, ValidatorPool

log = logging.getLogger(__name__)

# Failures back off from the refresh interval up to this, doubling each time.
MAX_BACKOFF = 24 * 3600.0
# How often an idle replica looks for due work that other replicas made due.
POLL_SECONDS = 2.0
# How long a woken replica waits for more work before it claims.
GATHER_SECONDS = 0.02
# How long a collection that ended waits for others to be recorded with it.
RECORD_SECONDS = 0.02
# A replica says it is alive this often; a replica silent for SILENT_AFTER_SECONDS is
# taken for dead, and the projects it held are free to take.
HEARTBEAT_SECONDS = 3.0
SILENT_AFTER_SECONDS = 15.0
# How deep files may refer to files that refer to files, and how many of one
# document's files are downloaded at once (each within CATALOG_FETCH_TIMEOUT of its
# own, not of its wait in line).
MAX_BUNDLE_DEPTH = 32
FILES_AT_ONCE = 4
# All the files of one document arrive within this many times CATALOG_FETCH_TIMEOUT
# (the lease on a project allows for it).
BUNDLE_FETCH_FACTOR = 4
# A YAML document may expand to this many times CATALOG_MAX_SPEC_BYTES of text.
EXPANSION_FACTOR = 4
# The background loops carry on through any database error, not only an outage.
STORE_ERRORS: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncpg.PostgresError)


# Documents up to this size are hashed on the event loop (140 µs at most here): a
# thread's round trip alone costs about 100 µs of CPU.
HASH_IN_PLACE_BYTES = 256 * 1024


async def digest(raw: bytes) -> bytes:
    """SHA-256 of a document. hashlib lets go of the GIL on large inputs: a 20 MB hash
    in a thread does not stall the event loop."""
    if len(raw) <= HASH_IN_PLACE_BYTES:
        return hashlib.sha256(raw).digest()
    return (await asyncio.to_thread(hashlib.sha256, raw)).digest()


@contextlib.asynccontextmanager
async def open_collector(
    pool: asyncpg.Pool, settings: Settings, metrics: Metrics, *, prestart: bool = True
) -> AsyncIterator[Collector]:
    """A collector with everything it owns (the HTTP session under the network policy,
    the validation workers, its heartbeat), closed again on the way out: its running
    collections stop, and every project it holds is handed back at once, due now, for
    another replica to collect. The app and the CLI both open it here."""
    session = create_session(NetworkPolicy(settings.allowed_networks))
    expanded = EXPANSION_FACTOR * settings.max_spec_bytes
    validators = ValidatorPool(
        size=settings.workers,
        timeout=settings.validation_timeout,
        max_expanded_bytes=expanded,
        lint_ruleset=settings.lint_ruleset,
        lint_seconds=settings.lint_timeout,
    )
    # POST /api/validate has a worker of its own and a short line: a flood of checks
    # never delays a collection, and waits no longer than a few requests.
    checks = ValidatorPool(
        size=1,
        timeout=settings.validation_timeout,
        max_expanded_bytes=expanded,
        max_waiting=settings.validate_queue,
        lint_ruleset=settings.lint_ruleset,
        lint_seconds=settings.lint_timeout,
    )
    if prestart:
        validators.start()
    # The checks' worker starts with the first check: a replica nobody asks keeps a
    # whole validator process (some 90 MB) less.
    collector = Collector(
        pool=pool, settings=settings, session=session, validators=validators, checks=checks, metrics=metrics
    )
    # Alive before the first claim: a lease whose holder has no heartbeat yet looks free.
    with contextlib.suppress(*STORE_ERRORS):
        await store.heartbeat(pool, replica=collector.replica)
    heartbeat = asyncio.create_task(collector.heartbeat_forever(), name="collector-heartbeat")
    try:
        yield collector
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await collector.stop()
        with contextlib.suppress(*STORE_ERRORS):
            released = await store.release_leases(pool, replica=collector.replica)
            if released:
                log.info("handed back %d project(s) being collected", released)
        await checks.close()
        await validators.close()
        await session.close()


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Collector:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: Settings,
        session: aiohttp.ClientSession,
        validators: ValidatorPool,
        checks: ValidatorPool,
        metrics: Metrics,
        replica: str | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.session = session
        self.validators = validators
        self.checks = checks
        self.metrics = metrics
        # Verdicts are reused across projects only when linted with the same rules.
        self.ruleset_name = lint.load(settings.lint_ruleset).name
        self.replica = replica or replica_name()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[Result | None]] = set()
        # Attempts without webhook events, recorded a few at once.
        self._records = Records(
            pool, replica=self.replica, gather_seconds=RECORD_SECONDS, most=settings.collect_concurrency
        )
        # Called when a collection wrote webhook events (the deliverer's wake-up).
        self.on_events: Callable[[], None] | None = None

    # -- scheduling ---------------------------------------------------------------

    def wake(self) -> None:
        """Something became due here (a registration, a refresh): look now, not at the next poll."""
        self._wake.set()

    async def heartbeat_forever(self) -> None:
        """Say this replica is alive, every few seconds: the projects it holds are its
        own only while it does (a replica killed with -9 says nothing at all)."""
        while True:
            try:
                await store.heartbeat(self.pool, replica=self.replica)
            except STORE_ERRORS as exc:
                log.warning("cannot reach the database to send a heartbeat: %s", type(exc).__name__)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def next_delay(self, result: Result, failures_before: int) -> float:
        interval = self.settings.refresh_interval
        if not result.failed:
            delay = interval
        else:
            # The first failure waits one interval, each further one twice as long.
            delay = min(interval * 2 ** min(failures_before, 16), max(interval, MAX_BACKOFF))
        # A little jitter keeps projects registered together from staying in lockstep.
        return delay * random.uniform(0.9, 1.0)

    async def run(self) -> None:
        """Collect due projects until cancelled, at most collect_concurrency at once."""
        concurrency = self.settings.collect_concurrency
        while True:
            self._wake.clear()
            free = concurrency - len(self._running)
            if free > 0:
                try:
                    jobs = await store.claim_due(
                        self.pool,
                        replica=self.replica,
                        limit=free,
                        lease_seconds=self.settings.effective_lease_seconds,
                        silent_after=SILENT_AFTER_SECONDS,
                    )
                except STORE_ERRORS as exc:
                    log.warning("cannot claim work: %s: %s", type(exc).__name__, str(exc)[:200])
                    jobs = []
                for job in jobs:
                    task = asyncio.create_task(self.collect(job), name=f"collect {job.name}")
                    self._running.add(task)
                    task.add_done_callback(self._done)
                if len(jobs) == free:
                    continue  # there may be more due right now
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that arrives as its timeout fires, and the loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
                # Woken: what else becomes due or finishes within a moment is claimed
                # with it, in one query (a stream of refresh requests was a claim each).
                await asyncio.sleep(GATHER_SECONDS)

    def _done(self, task: asyncio.Task[Result | None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("collection crashed", exc_info=task.exception())
        self._wake.set()

    async def stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._records.close()

    async def collect_named(self, name: str, *, trigger: str) -> Result | None:
        """Collect one project now (the CLI). None while another replica holds its lease."""
        job = await store.claim_named(
            self.pool,
            name=name,
            replica=self.replica,
            lease_seconds=self.settings.effective_lease_seconds,
            silent_after=SILENT_AFTER_SECONDS,
            trigger=trigger,
        )
        return await self.collect(job) if job else None

    # -- one collection -----------------------------------------------------------

    async def collect(self, job: Job) -> Result | None:
        """Collect one leased project; whatever the document holds and whatever fails on
        the way, the attempt ends in a recorded outcome and the lease is released."""
        started_at = dt.datetime.now(dt.UTC)
        try:
            result = await self._collect(job, started_at)
        except TransientFailure as exc:
            result = self._failed(job, started_at, str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure must still be recorded
            log.exception("collecting %s failed", job.name)
            result = self._failed(
                job, started_at, f"the collection failed: {type(exc).__name__}: {str(exc)[:300]}"
            )
        if not result.published and job.published_document_id and job.published_ruleset != self.ruleset_name:
            await self._relint(job)
        if result.large:
            # The document and its parsed form are gone by now: give their memory back.
            release_memory()
        events = self._events(job, result)
        next_delay = self.next_delay(result, job.consecutive_failures)
        if not events:
            kept = await self._records.record(store.Finished(job, result, next_delay))
        else:
            async with self.pool.acquire() as conn:
                kept = await store.finish(
                    conn,
                    job=job,
                    replica=self.replica,
                    result=result,
                    next_delay=next_delay,
                    events=events,
                    give_up_seconds=self.settings.webhook_retry_for,
                )
        if kept and events and self.on_events is not None:
            self.on_events()
        if not kept:
            log.warning("lost the lease on %s before finishing; another replica took over", job.name)
            return None
        self.metrics.collections.labels(outcome=result.outcome).inc()
        log.info("collected %s: %s%s", job.name, result.outcome, f" ({result.error})" if result.error else "")
        return result

    def _events(self, job: Job, result: Result) -> list[tuple[str, str]]:
        """What the project's webhook subscribers are told of this collection."""
        published = result.published and result.sha256 != job.published_sha256
        collected = webhook_events.Collected(
            name=job.name,
            title=result.title or job.title,
            status_before=job.status,
            status=result.status,
            error=result.error,
            new_version=result.changed,
            published=published,
            version=result.version,
            sha256=result.sha256.hex() if result.sha256 else None,
            previous_version=job.published_version,
            previous_sha256=job.published_sha256.hex() if job.published_sha256 else None,
            changes=result.changes,
            score_before=job.published_score,
            score=result.score,
        )
        base_url = self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        return webhook_events.events(collected, base_url=base_url, at=dt.datetime.now(dt.UTC))

    async def _relint(self, job: Job) -> None:
        """Lint the published version again when it was linted with other rules (or
        stored before linting began): every API gets its report without waiting for a
        new version, and a changed CATALOG_LINT_RULESET reaches them all."""
        assert job.published_document_id is not None
        try:
            content_json = await store.published_json(self.pool, document_id=job.published_document_id)
            report = await self.validators.lint(content_json) if content_json else None
            if report is not None:
                async with self.pool.acquire() as conn:
                    await store.save_lint(conn, document_id=job.published_document_id, report=report)
        except TransientFailure as exc:
            log.warning("could not lint %s again: %s", job.name, exc)
        except STORE_ERRORS as exc:
            log.warning("could not lint %s again: %s: %s", job.name, type(exc).__name__, exc)

    async def _collect(self, job: Job, started_at: dt.datetime) -> Result:
        began = time.perf_counter()
        if job.current_sources and await self._sources_unchanged(job.current_sources):
            # A bundle none of whose files changed: nothing to read, join or validate.
            return self._unchanged(job, started_at, 304, keep=True)
        # Conditional GET only makes sense while we hold the document it describes
        # (for a bundle, the files were just asked one by one).
        has_document = job.current_sha256 is not None and not job.current_sources
        fetched = await fetch(
            self.session,
            job.swagger_url,
            timeout=self.settings.fetch_timeout,
            max_bytes=self.settings.max_spec_bytes,
            etag=job.http_etag if has_document else None,
            last_modified=job.http_last_modified if has_document else None,
        )
        self.metrics.fetch_seconds.observe(time.perf_counter() - began)

        if fetched.outcome in ("unreachable", "refused"):
            log.info("%s: %s (%s)", job.name, fetched.error, redacted(job.swagger_url))
            return Result(
                outcome=fetched.outcome,
                status="unreachable",
                started_at=started_at,
                http_status=fetched.http_status,
                error=fetched.error,
                keep_cache_headers=True,
            )
        if fetched.outcome == "not_modified":
            return self._unchanged(job, started_at, fetched.http_status, keep=True)

        assert fetched.body is not None
        sha256 = await digest(fetched.body)
        if sha256 == job.current_sha256:
            result = self._unchanged(job, started_at, fetched.http_status, keep=False)
            result.etag, result.last_modified = fetched.etag, fetched.last_modified
            return result

        analysis = await self._analysis(fetched.body, fetched.charset, sha256)
        raw, sources = fetched.body, None
        if analysis.external:
            joined = await self._bundle(job.swagger_url, fetched, analysis)
            if isinstance(joined, Result):
                return dataclasses.replace(joined, started_at=started_at)
            raw, sha256, analysis, sources = joined
            if sha256 == job.current_sha256:
                return self._unchanged(job, started_at, fetched.http_status, keep=False)
        changes = await self._changes(job, sha256, analysis) if analysis.valid else None
        async with self.pool.acquire() as conn, conn.transaction():
            # A new version and what changed in it are stored together: no reader sees
            # the one without the other, and a replica dying in between loses neither.
            try:
                document_id = await store.store_document(
                    conn, project_id=job.id, sha256=sha256, raw=raw, analysis=analysis, sources=sources
                )
            except store.SourceGone as exc:
                raise TransientFailure(
                    "the stored document with the same bytes was deleted while this one was stored; "
                    "it is collected again later"
                ) from exc
            if changes and job.published_document_id is not None:
                await store.record_change(
                    conn,
                    project_id=job.id,
                    from_document_id=job.published_document_id,
                    to_document_id=document_id,
                    changes=changes,
                )
        if not analysis.valid:
            # Every valid version is history; a stream of broken ones is not.
            await store.prune_unpublished(
                self.pool,
                project_id=job.id,
                keep=self.settings.keep_invalid_versions,
                current_document_id=document_id,
            )
        first_error = analysis.errors[0]["message"] if analysis.errors else None
        return Result(
            outcome="changed" if analysis.valid else "invalid",
            status="valid" if analysis.valid else "invalid",
            started_at=started_at,
            http_status=fetched.http_status,
            error=None
            if analysis.valid
            else f"{len(analysis.errors)} validation error(s); first: {first_error}",
            document_id=document_id,
            changed=True,
            published=analysis.valid,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            large=len(raw) > RETIRE_AFTER_BYTES,
            sha256=sha256,
            title=analysis.title,
            version=analysis.version,
            changes=changes,
            score=(analysis.lint or {}).get("score"),
        )

    # -- documents split over files -----------------------------------------------

    def _file_downloads(self) -> Callable[..., Awaitable[Fetched]]:
        """Downloads of one document's files, FILES_AT_ONCE at a time, each within
        CATALOG_FETCH_TIMEOUT from when it starts (not from when it joined the line)."""
        line = asyncio.Semaphore(FILES_AT_ONCE)

        async def download(
            url: str, *, max_bytes: int, etag: str | None = None, last_modified: str | None = None
        ) -> Fetched:
            async with line:
                return await fetch(
                    self.session,
                    url,
                    timeout=self.settings.fetch_timeout,
                    max_bytes=max_bytes,
                    etag=etag,
                    last_modified=last_modified,
                )

        return download

    async def _sources_unchanged(self, sources: list[dict[str, str | None]]) -> bool:
        """Whether every file of a bundle answers a conditional GET with 304, or with
        the same bytes as when it was bundled."""
        download = self._file_downloads()

        async def same(source: dict[str, str | None]) -> bool:
            url = source.get("url")
            if not url:
                return False
            got = await download(
                url,
                max_bytes=self.settings.max_spec_bytes,
                etag=source.get("etag"),
                last_modified=source.get("last_modified"),
            )
            if got.outcome == "not_modified":
                return True
            return got.body is not None and (await digest(got.body)).hex() == source.get("sha256")

        checks = [asyncio.ensure_future(same(s)) for s in sources]
        try:
            async with asyncio.timeout(BUNDLE_FETCH_FACTOR * self.settings.fetch_timeout):
                for check in asyncio.as_completed(checks):
                    if not await check:
                        return False
            return True
        except TimeoutError:
            return False
        finally:
            for check in checks:
                check.cancel()

    async def _bundle(
        self, swagger_url: str, root: Fetched, analysis: Analysis, *, judging: float | None = None
    ) -> tuple[bytes, bytes, Analysis, list[dict[str, str | None]]] | Result:
        """A document that refers to other files, joined with them all into one: the
        bundle's bytes, its SHA-256, its verdict (errors told in the file they are in)
        and the files it was made of. A Result instead when a file could not be had."""
        assert root.body is not None and analysis.spec_format is not None
        root_url = urldefrag(root.url or swagger_url)[0]
        workers = self.validators if judging is None else self.checks
        deadline = BUNDLE_FETCH_FACTOR * self.settings.fetch_timeout
        try:
            async with asyncio.timeout(deadline):
                gathered = await self._gather(root_url, root, analysis.external, workers)
        except TimeoutError:
            return Result(
                outcome="unreachable",
                status="unreachable",
                started_at=dt.datetime.now(dt.UTC),
                error=f"the files the document refers to did not all arrive within {deadline:g} seconds",
                keep_cache_headers=True,
            )
        if isinstance(gathered, Result):
            return gathered
        files, unreadable = gathered
        sources: list[dict[str, str | None]] = [
            {
                "url": url,
                "sha256": (await digest(got.body or b"")).hex(),
                "etag": got.etag,
                "last_modified": got.last_modified,
            }
            for url, got in files.items()
        ]
        joined = unreadable or await workers.bundle(
            root_url,
            analysis.spec_format,
            {url: (got.body or b"", got.charset) for url, got in files.items()},
        )
        if isinstance(joined, bundling.BundleError):
            # No bundle to store: the version is the root's bytes, named by all the files.
            failed = Analysis(
                spec_format=analysis.spec_format,
                valid=False,
                errors=[{"message": joined.message, "path": joined.path, "source": redacted(joined.source)}],
            )
            identity = "\n".join(f"{s['url']} {s['sha256']}" for s in sources).encode()
            return root.body, await digest(identity), failed, sources
        sha256 = await digest(joined.raw)
        verdict = await self._analysis(joined.raw, "utf-8", sha256, bundled=True, judging=judging)
        if verdict.errors and not any("source" in e for e in verdict.errors):
            verdict.errors = bundling.locate(verdict.errors, joined.provenance, root_url)
        return joined.raw, sha256, verdict, sources

    async def _gather(
        self, root_url: str, root: Fetched, external: list[str], workers: ValidatorPool
    ) -> tuple[dict[str, Fetched], bundling.BundleError | None] | Result:
        """The root and every file it refers to, directly or not, each downloaded by the
        guarded fetcher; all of them together within CATALOG_MAX_SPEC_BYTES and
        CATALOG_MAX_BUNDLE_FILES, and no deeper than MAX_BUNDLE_DEPTH. With them, the
        first file that cannot be read (the document's fault: it makes it invalid)."""
        assert root.body is not None
        files: dict[str, Fetched] = {root_url: root}
        budget = self.settings.max_spec_bytes - len(root.body)
        try:
            wanted = list(dict.fromkeys(bundling.split_reference(ref, root_url)[0] for ref in external))
        except ValueError as exc:
            return files, bundling.BundleError(root_url, "", str(exc))
        download = self._file_downloads()
        depth = 0
        while wanted := [url for url in wanted if url not in files]:
            depth += 1
            if depth > MAX_BUNDLE_DEPTH:
                return self._refused_bundle(
                    f"the files refer to each other more than {MAX_BUNDLE_DEPTH} deep"
                )
            if len(files) + len(wanted) > self.settings.max_bundle_files:
                return self._refused_bundle(
                    f"the document refers to more than {self.settings.max_bundle_files} files "
                    "(CATALOG_MAX_BUNDLE_FILES)"
                )
            downloads = await asyncio.gather(*(download(url, max_bytes=max(budget, 1)) for url in wanted))
            for url, got in zip(wanted, downloads, strict=True):
                if got.body is None:
                    return Result(
                        outcome="refused" if got.outcome == "refused" else "unreachable",
                        status="unreachable",
                        started_at=dt.datetime.now(dt.UTC),
                        http_status=got.http_status,
                        error=f"{redacted(url)}, referred to by the document: {got.error}",
                        keep_cache_headers=True,
                    )
                budget -= len(got.body)
                files[url] = got
            if budget < 0:
                return self._refused_bundle(
                    f"the document and the files it refers to are larger than CATALOG_MAX_SPEC_BYTES "
                    f"({self.settings.max_spec_bytes} bytes) together"
                )
            found = await workers.references(
                {url: (files[url].body or b"", files[url].charset) for url in wanted}
            )
            next_wanted: list[str] = []
            for url in wanted:
                refs = found[url]
                if isinstance(refs, bundling.BundleError):
                    return files, refs
                next_wanted.extend(refs)
            wanted = list(dict.fromkeys(next_wanted))
        return files, None

    @staticmethod
    def _refused_bundle(reason: str) -> Result:
        return Result(
            outcome="refused",
            status="unreachable",
            started_at=dt.datetime.now(dt.UTC),
            error=reason,
            keep_cache_headers=True,
        )

    async def _analysis(
        self,
        raw: bytes,
        charset: str | None,
        sha256: bytes,
        *,
        bundled: bool = False,
        judging: float | None = None,
    ) -> Analysis:
        """The verdict on these bytes: the one reached before for the same bytes in any
        project, else a worker's. Nothing is validated twice. ``judging``: for POST
        /api/validate, on the checks' worker within that many seconds, verdict only."""
        if judging is not None:
            known = await store.find_analysis(
                self.pool, sha256=sha256, ruleset=self.ruleset_name, verdict_only=True
            )
            if known is not None:
                return known
            return await self.checks.analyze(
                raw, charset, timeout=judging, verdict_only=True, bundled=bundled
            )
        analysis = await store.find_analysis(self.pool, sha256=sha256, ruleset=self.ruleset_name)
        if analysis is None:
            began = time.perf_counter()
            analysis = await self.validators.analyze(raw, charset, bundled=bundled)
            self.metrics.validation_seconds.observe(time.perf_counter() - began)
        return analysis

    # -- judging without storing (POST /api/validate) ------------------------------

    async def judge(
        self, raw: bytes, charset: str | None = None, *, timeout: float | None = None
    ) -> Analysis:
        """The verdict a collection would reach on these bytes; nothing is stored. Runs
        on the checks' own worker, within ``timeout``. Busy when too many wait for it;
        TransientFailure when no verdict could be reached."""
        analysis = await self._analysis(raw, charset, await digest(raw), judging=self._judging(timeout))
        if analysis.external:
            shown = ", ".join(repr(ref) for ref in analysis.external[:5])
            more = f" and {len(analysis.external) - 5} more" if len(analysis.external) > 5 else ""
            error: ValidationError = {
                "message": f"the document refers to other files ({shown}{more}), which cannot be "
                'resolved without its URL: send {"swagger_url": "..."} instead, and they are fetched with it',
                "path": "",
            }
            return Analysis(spec_format=analysis.spec_format, valid=False, errors=[error])
        return analysis

    async def compare(
        self, base: bytes, revision: bytes, *, timeout: float | None = None
    ) -> tuple[Analysis, Analysis, list[dict[str, Any]] | None]:
        """POST /api/diff: each document judged as judge() judges it, and what changed
        from one to the other when both are valid (None otherwise); nothing is stored.
        TransientFailure when no comparison could be made."""
        old = await self.judge(base, timeout=timeout)
        new = await self.judge(revision, timeout=timeout)
        if not (old.valid and new.valid):
            return old, new, None
        changes = await self.checks.diff(base.decode(), revision.decode())
        if changes is None:
            raise TransientFailure("the comparison stopped before it was complete")
        return old, new, changes

    def _judging(self, timeout: float | None) -> float:
        return self.settings.validation_timeout if timeout is None else timeout

    async def judge_url(self, url: str, *, timeout: float | None = None) -> Analysis:
        """Download ``url`` exactly as a collection would, and judge what came."""
        fetched = await fetch(
            self.session,
            url,
            timeout=self.settings.fetch_timeout,
            max_bytes=self.settings.max_spec_bytes,
        )
        if fetched.body is None:
            error: ValidationError = {"message": fetched.error or "not downloaded", "path": ""}
            return Analysis(spec_format=None, valid=False, errors=[error])
        judging = self._judging(timeout)
        analysis = await self._analysis(
            fetched.body, fetched.charset, await digest(fetched.body), judging=judging
        )
        if not analysis.external:
            return analysis
        joined = await self._bundle(url, fetched, analysis, judging=judging)
        if isinstance(joined, Result):
            error = {"message": joined.error or "the files could not be bundled", "path": ""}
            return Analysis(spec_format=analysis.spec_format, valid=False, errors=[error])
        return joined[2]

    async def _changes(self, job: Job, sha256: bytes, analysis: Analysis) -> list[dict[str, Any]] | None:
        """What changed since the published version, for a new valid one; None when
        there is nothing to compare with (or no structural difference: a reformat)."""
        if job.published_document_id is None or job.published_sha256 == sha256:
            return None
        new_json = analysis.content_json
        if new_json is None and analysis.same_as is not None:
            new_json = await store.document_json(self.pool, document_id=analysis.same_as)
        if new_json is None:
            return None
        old_json = await store.document_json(self.pool, document_id=job.published_document_id)
        if old_json is None:
            return None
        return await self.validators.diff(old_json, new_json) or None

    @staticmethod
    def _failed(job: Job, started_at: dt.datetime, reason: str) -> Result:
        """Not the document's fault: no verdict, the project keeps the status it had."""
        return Result(
            outcome="error", status=job.status, started_at=started_at, error=reason, keep_cache_headers=True
        )

    @staticmethod
    def _unchanged(job: Job, started_at: dt.datetime, http_status: int | None, *, keep: bool) -> Result:
        return Result(
            outcome="unchanged",
            status="valid" if job.current_valid else "invalid",
            started_at=started_at,
            http_status=http_status,
            keep_cache_headers=keep,
        )
