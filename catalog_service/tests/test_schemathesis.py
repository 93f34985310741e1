"""schemathesis drives the live service from openapi/catalog.yaml: no 5xx, nothing off-spec."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import pytest

from catalog_service.spec import spec_path

from .conftest import ADMIN_TOKEN, ARTIFACTS, free_port
from .processes import BIN, CATALOG_SERVICE, running, service_env

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_off_the_spec(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(
        DATABASE_URL=database_url,
        CATALOG_ADMIN_TOKEN=ADMIN_TOKEN,
        CATALOG_PORT=str(port),
        # Registered URLs point nowhere reachable; keep the collector's attempts short.
        CATALOG_FETCH_TIMEOUT="2",
        CATALOG_WORKERS="1",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with running([CATALOG_SERVICE, "serve"], env=env, base_url=base, log=tmp_path / "serve.log"):
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "run",
                str(spec_path()),
                "--url", f"{base}/api",
                "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
                "--checks", CHECKS,
                "--max-examples", "40",
                "--phases", "examples,coverage,fuzzing,stateful",
                "--seed", "20261123",
                "--workers", "1",
                "--generation-database", "none",
                "--no-color",
                "--report", "junit",
                "--report-dir", str(ARTIFACTS / "schemathesis"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    (ARTIFACTS / "schemathesis.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
