"""Validation worker processes: CPU-bound work off the event loop, bounded in time.

Each worker is a process serving one document at a time over a pipe. A worker that
overruns its deadline is killed and replaced; one that dies (a crash in a C parser,
the OOM killer) is replaced too. Neither is the document's fault, so neither becomes
its verdict: the caller gets a TransientFailure and tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from .. import lint, patterns
from ..compare import diff
from ..domain import Analysis, Busy, SpecFormat, TransientFailure
from ..memory import release_memory
from . import bundle as bundling
from .analyze import analyze, relint

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")


# A worker that handled a document this large is retired afterwards: CPython keeps
# the memory it took, and a fresh worker gives it back to the system.
RETIRE_AFTER_BYTES = 4 * 1024 * 1024
# A worker with nothing to do for this long leaves, and gives its memory (some 70 MB)
# back: a catalog whose documents did not change needs none between collections. The
# next job starts one again (about a second of CPU, off the event loop's time).
IDLE_SECONDS = 30.0
# Start-up (importing the validator, cold on a fresh install) is not validation time.
STARTUP_SECONDS = 120.0
READY = "ready"
# The lowest priority there is (see _Worker).
BATCH_NICENESS = 19


def _serve(conn: Connection) -> None:
    patterns.install()
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        kind, *args = job
        if kind == "diff":
            old, new = (json.loads(text) for text in args)
            conn.send(diff(old, new))
        elif kind == "references":
            conn.send(bundling.references_of(*args))
        elif kind == "bundle":
            conn.send(bundling.joined(*args))
        elif kind == "lint":
            content_json, (ruleset, lint_seconds) = args
            conn.send(relint(content_json, _ruleset(ruleset), lint_seconds))
        else:
            raw, charset, max_expanded_bytes, verdict_only, bundled, (ruleset, lint_seconds) = args
            analysis = analyze(
                raw,
                charset,
                max_expanded_bytes=max_expanded_bytes,
                bundled=bundled,
                ruleset=_ruleset(ruleset),
                lint_seconds=lint_seconds,
            )
            if verdict_only:
                # The caller needs the verdict only: the parsed document stays here.
                analysis.content_json, analysis.operations = None, []
            analysis.pack_operations()
            conn.send(analysis)


@functools.lru_cache(maxsize=4)
def _ruleset(path: str | None) -> lint.Ruleset:
    """The linter's ruleset, read once per worker (the service checked it at start)."""
    return lint.load(path)


def _size(part: Any) -> int:
    if isinstance(part, bytes | str):
        return len(part)
    if isinstance(part, dict):
        return sum(len(raw) for raw, _ in part.values())
    return 0


class _Timeout(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        self.conn, child = _CONTEXT.Pipe()
        self.process: Any = _CONTEXT.Process(
            target=_serve, args=(child,), daemon=True, name="catalog-validator"
        )
        self.process.start()
        # Validation and linting are batch work: the event loop and PostgreSQL, which
        # serve people, go first when the cores are busy. The lowest priority (a weight
        # of 15 against the server's 1024): linting keeps a worker busy for seconds where
        # validating took milliseconds, and at nice 10 it cost readers' p99 under load.
        # Set here, from its first instruction: a new worker spends some 0.6 s of CPU
        # importing the validator and the linter, and at the server's priority that
        # came back with every worker replaced after a large document.
        if (pid := self.process.pid) is not None:  # always, once started
            with contextlib.suppress(OSError):  # gone already: its job finds out
                os.setpriority(os.PRIO_PROCESS, pid, BATCH_NICENESS)
        child.close()
        self.ready = False
        # When it last finished a job (time.monotonic()).
        self.idle_since = time.monotonic()
        self._killing = threading.Lock()
        self._killed = False

    def roundtrip(self, job: tuple[Any, ...], timeout: float) -> Any:
        if not self.ready:
            if not self.conn.poll(STARTUP_SECONDS) or self.conn.recv() != READY:
                raise EOFError("the validator process did not start")
            self.ready = True
        self.conn.send(job)
        if not self.conn.poll(timeout):
            raise _Timeout
        return self.conn.recv()  # EOFError when the worker died

    def kill(self) -> None:
        """Once, whoever asks: a worker being replaced after a timeout may be killed by
        the pool closing at the same moment, from another thread."""
        with self._killing:
            if self._killed:
                return
            self._killed = True
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class ValidatorPool:
    """``size`` worker processes. ``max_waiting`` bounds how many callers may wait for
    one (None: no bound); a caller beyond it gets Busy at once."""

    def __init__(
        self,
        *,
        size: int,
        timeout: float,
        max_expanded_bytes: int,
        max_waiting: int | None = None,
        lint_ruleset: str | None = None,
        lint_seconds: float = float("inf"),
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self.timeout = timeout
        self.max_expanded_bytes = max_expanded_bytes
        # The API design rules every document is linted with (None: the NLGov ADR),
        # and how long linting one may take.
        self.linting = (lint_ruleset, lint_seconds)
        self.max_waiting = max_waiting
        self._threads = ThreadPoolExecutor(max_workers=size + 1, thread_name_prefix="validator-pipe")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._waiting = 0
        self._closed = False
        # The one timer that looks for workers idle long enough (None: none set).
        self._retiring: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Spawn the workers now (they import in the background); else on first use."""
        while len(self._all) < self.size and not self._closed:
            self._spawn()

    def _spawn(self) -> None:
        worker = _Worker()
        self._all.add(worker)
        self._rest(worker)

    def _rest(self, worker: _Worker) -> None:
        """Back in line for the next job; retired if none comes within idle_seconds.
        One timer looks after every idle worker: a timer per job was thousands of
        them firing for nothing half a minute after an ingestion."""
        worker.idle_since = time.monotonic()
        self._idle.put_nowait(worker)
        if self._retiring is None:
            self._retiring = asyncio.get_running_loop().call_later(self.idle_seconds, self._retire_idle)

    def _retire_idle(self) -> None:
        self._retiring = None
        waiting = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        now = time.monotonic()
        soonest: float | None = None
        for worker in waiting:
            if self._closed:
                self._idle.put_nowait(worker)
            elif (idle := now - worker.idle_since) < self.idle_seconds:
                self._idle.put_nowait(worker)
                left = self.idle_seconds - idle
                soonest = left if soonest is None else min(soonest, left)
            else:
                self._all.discard(worker)
                # Killing waits for the process: not on the event loop.
                asyncio.get_running_loop().run_in_executor(None, worker.kill)
        if soonest is not None:
            # The loop's timers may fire a little early (uvloop's clock is the one of
            # the iteration's start): a worker found not idle long enough is looked at
            # again when it will be, never left for good.
            self._retiring = asyncio.get_running_loop().call_later(soonest, self._retire_idle)

    async def analyze(
        self,
        raw: bytes,
        declared_charset: str | None = None,
        *,
        timeout: float | None = None,
        verdict_only: bool = False,
        bundled: bool = False,
    ) -> Analysis:
        """The verdict on ``raw``. TransientFailure when no verdict could be reached for
        a reason that is not the document's (a deadline on a busy machine, a worker
        killed); Busy when the waiting line is full."""
        result = await self._run(
            (
                "analyze",
                raw,
                declared_charset,
                self.max_expanded_bytes,
                verdict_only,
                bundled,
                self.linting,
            ),
            timeout,
        )
        assert isinstance(result, Analysis)
        return result

    async def references(
        self, files: dict[str, tuple[bytes, str | None]]
    ) -> dict[str, list[str] | bundling.BundleError]:
        """The other files each of these files refers to, or why it cannot be read."""
        return dict(await self._run(("references", files, self.max_expanded_bytes), None))

    async def bundle(
        self, root: str, spec_format: SpecFormat, files: dict[str, tuple[bytes, str | None]]
    ) -> bundling.Joined | bundling.BundleError:
        """The files joined into one document (its JSON bytes), or why they cannot be."""
        result = await self._run(("bundle", root, spec_format, files, self.max_expanded_bytes), None)
        assert isinstance(result, bundling.Joined | bundling.BundleError)
        return result

    async def lint(self, content_json: str) -> dict[str, Any] | None:
        """The design rules report on a stored document (JSON text)."""
        result = await self._run(("lint", content_json, self.linting), None)
        return dict(result) if result is not None else None

    async def diff(self, old_json: str, new_json: str) -> list[dict[str, Any]] | None:
        """The changes between two documents; None when the diff could not be computed."""
        try:
            return list(await self._run(("diff", old_json, new_json), None))
        except TransientFailure:
            return None

    async def _run(self, job: tuple[Any, ...], timeout: float | None) -> Any:
        loop = asyncio.get_running_loop()
        if self._idle.empty() and len(self._all) < self.size and not self._closed:
            self._spawn()  # none yet, or retired while idle
        if self.max_waiting is not None and self._idle.empty() and self._waiting >= self.max_waiting:
            raise Busy
        deadline = self.timeout if timeout is None else min(timeout, self.timeout)
        self._waiting += 1
        try:
            worker = await self._idle.get()
        finally:
            self._waiting -= 1
        completed = False
        try:
            result = await loop.run_in_executor(self._threads, worker.roundtrip, job, deadline)
            completed = True
            return result
        except _Timeout:
            message = f"validation took longer than {deadline:g} seconds and was stopped"
        except (EOFError, OSError) as exc:
            message = f"the validator process died on this document ({type(exc).__name__})"
        finally:
            # A worker that did not answer (timed out, died, or its caller was
            # cancelled) may still be busy: it never takes another job. Killing and
            # spawning take a while, so not on the event loop.
            large = sum(_size(part) for part in job[1:])
            if not completed or large > RETIRE_AFTER_BYTES:
                replacing = loop.run_in_executor(None, self._replace, worker)
                replacing.add_done_callback(self._replaced)
            else:
                self._rest(worker)
        log.warning(message)
        raise TransientFailure(message)

    def _replaced(self, replacing: asyncio.Future[_Worker]) -> None:
        if replacing.cancelled() or replacing.exception() is not None:
            log.error("a validation worker could not be replaced", exc_info=replacing.exception())
            return
        fresh = replacing.result()
        if self._closed:
            fresh.kill()
        else:
            self._rest(fresh)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        release_memory()
        fresh = _Worker()
        # Swapped in one step: the pool never looks a worker short (and spawns one more).
        self._all.add(fresh)
        self._all.discard(worker)
        return fresh

    async def close(self) -> None:
        # Workers hold no state worth a goodbye: kill them, which also frees any
        # thread still waiting on a pipe.
        self._closed = True
        if self._retiring is not None:
            self._retiring.cancel()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.kill) for w in list(self._all)))
        self._all.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
