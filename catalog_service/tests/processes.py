"""Running the real command (``catalog-service serve``, ``make run``) as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .conftest import ADMIN_TOKEN

BIN = Path(sys.executable).parent
CATALOG_SERVICE = str(BIN / "catalog-service")


def service_env(**overrides: str) -> dict[str, str]:
    """The environment minus anything of ours that the caller does not set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_") and k != "DATABASE_URL"}
    env.update(overrides)
    return env


def serve_env(database_url: str, port: int, **overrides: str) -> dict[str, str]:
    """The environment of a `catalog-service serve` under test: the test database, the
    tests' admin token, one validation worker, and ``overrides``."""
    return service_env(
        DATABASE_URL=database_url,
        CATALOG_ADMIN_TOKEN=ADMIN_TOKEN,
        CATALOG_PORT=str(port),
        CATALOG_WORKERS="1",
        **overrides,
    )


def wait_for_health(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url}/api/health did not answer within {timeout}s")


@contextmanager
def running(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    base_url: str,
    cwd: Path | None = None,
    log: Path,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group, wait until healthy, stop it with SIGTERM."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_health(base_url, process, timeout)
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CATALOG_SERVICE, *args], env=service_env(**env), capture_output=True, text=True, timeout=120
    )
