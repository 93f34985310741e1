"""schemathesis drives the live service from openapi/catalog.yaml with every check it has:
no 5xx, nothing off the spec, invalid input refused, valid input accepted, 405s with Allow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import pytest

from catalog_service.spec import spec_path

from .conftest import ADMIN_TOKEN, ARTIFACTS, free_port
from .processes import BIN, CATALOG_SERVICE, running, serve_env


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_nothing(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(
        database_url,
        port,
        # Registered URLs point nowhere reachable; keep the collector's attempts short.
        CATALOG_FETCH_TIMEOUT="2",
        # Thousands of writes in a minute from one address: limits would answer most of
        # them 429 (documented, so allowed) and leave the handlers untested.
        CATALOG_WRITE_RATE="1000000",
        CATALOG_ANONYMOUS_VALIDATE_RATE="1000000",
        CATALOG_MAX_PROJECTS_PER_TOKEN="1000000",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with running([CATALOG_SERVICE, "serve"], env=env, base_url=base, log=tmp_path / "serve.log"):
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "run",
                str(spec_path()),
                "--url",
                f"{base}/api",
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--checks",
                "all",
                "--max-examples",
                "40",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--seed",
                "20261123",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "junit",
                "--report-dir",
                str(ARTIFACTS / "schemathesis"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    (ARTIFACTS / "schemathesis.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
