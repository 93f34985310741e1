"""Access lines written straight to the log handler are the lines logging writes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from catalog_service import logs


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_access_line_is_what_the_formatter_makes_of_the_record(
    log_format: logs.LogFormat, tmp_path: Path
) -> None:
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    handler = logs.make_handler(log_format, fd)
    requests = [
        ("GET", "/api/catalog", 200, 3.25),
        ("POST", "/api/projects/stad-parkeren/refresh", 202, 0.04),
        ("GET", '/api/catalog/"quoted"\\name', 404, 1234.56),
        ("DELETE", "/api/catalog/straße-ünïcödé", 500, 0.0),
    ]
    # Within a second, at its very end, across seconds and back again.
    times = [1_795_000_000.0, 1_795_000_000.0005, 1_795_000_000.9996, 1_795_000_001.5, 1_795_000_000.25]
    expected = []
    for created in times:
        for method, path, status, duration_ms in requests:
            record = logs.ACCESS.makeRecord(
                logs.ACCESS.name,
                logging.INFO,
                __file__,
                0,
                "%s %s %s %.1f ms",
                (method, path, status, duration_ms),
                None,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(duration_ms, 1),
                },
            )
            record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
            expected.append(handler.format(record))
            handler.access(method, path, status, duration_ms, created)
    handler.flush()
    os.close(fd)
    assert (tmp_path / "log").read_text(encoding="utf-8").splitlines() == expected
