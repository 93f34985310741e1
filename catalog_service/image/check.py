"""make image-test: build the image from catalog_service/Dockerfile and run it for real.

With Debian's podman (no Docker engine needed): builds a base image from Debian
itself with debootstrap when no other is given (PYTHON_IMAGE=...), builds the
project's image as the README says, starts it with the embedded PostgreSQL inside,
waits for its HEALTHCHECK to report healthy, registers a project whose document an
upstream on this host serves, reads it back from the catalog, and stops the
container with SIGTERM. Prints the image's size and the time from start to healthy.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
SERVICE = HERE.parent
REPO = SERVICE.parent
BASE = "localhost/catalog-base:bookworm"
IMAGE = "localhost/catalog-service:image-test"
ADMIN = "image-test-admin-token"
SIZE_GOAL_MB = 250
# The host's CA bundle, over the image's own during the build: pip reaches the package
# index the way this host does.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Containers in the image test", "version": "1.0.0"},
    "paths": {
        "/containers": {"get": {"summary": "Every container", "responses": {"200": {"description": "ok"}}}}
    },
}


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=capture)


def containers_conf(folder: Path) -> None:
    """What rootful podman needs on these machines: no default ulimits (the sandbox
    refuses to raise them) and runc."""
    conf = folder / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    os.environ["CONTAINERS_CONF"] = str(conf)


def debian_base(work: Path) -> str:
    """A minimal Debian bookworm with Python 3.11 and pip, as a local base image."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return BASE
    root = work / "root"
    print("building the base image from Debian with debootstrap", flush=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,python3-pip,ca-certificates",
            "bookworm",
            str(root),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
    )
    # What the official slim image leaves out too, and its Python's own pip may install
    # into it (no PEP 668 marker); `python` is the image's Python.
    for folder in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/locale",
        "usr/share/doc",
        "usr/share/man",
    ):
        for entry in (root / folder).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    (root / "usr/bin/python").symlink_to("python3")
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "--change", 'CMD ["python3"]', "-", BASE],
        stdin=tar.stdout,
        check=True,
        capture_output=True,
    )
    tar.wait()
    shutil.rmtree(root, ignore_errors=True)
    return BASE


def build(base: str) -> float:
    """The README's build, with what podman on this host adds: the docker image format
    (it keeps the HEALTHCHECK), the host's network and CA bundle for pip, the base."""
    began = time.monotonic()
    command = [
        "podman",
        "build",
        "--format",
        "docker",
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--build-context",
        "openapi=openapi",
        "-t",
        IMAGE,
    ]
    if CA_BUNDLE.exists():
        command += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    subprocess.run([*command, "catalog_service"], cwd=REPO, check=True)
    return time.monotonic() - began


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_document(port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/openapi.json", lambda _: web.json_response(DOCUMENT))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def until(what: str, check: object, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await check():  # type: ignore[operator]
            return time.monotonic() - began
        await asyncio.sleep(0.5)
    raise SystemExit(f"image-test: {what} did not happen within {timeout:g} s")


async def run_container() -> None:
    port, upstream_port = free_port(), free_port()
    upstream = await serve_document(upstream_port)
    name = f"catalog-image-test-{os.getpid()}"
    podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        f"CATALOG_PORT={port}",
        "-e",
        f"CATALOG_ADMIN_TOKEN={ADMIN}",
        "-e",
        "CATALOG_ALLOWED_NETWORKS=127.0.0.0/8",
        "-e",
        "CATALOG_WORKERS=1",
        "-e",
        "CATALOG_HOST=127.0.0.1",
        IMAGE,
    )
    started = time.monotonic()
    try:

        async def healthy() -> bool:
            # The image's own HEALTHCHECK, run the way the engine runs it.
            return podman("healthcheck", "run", name, check=False).returncode == 0

        to_healthy = await until("the container becoming healthy", healthy, 120)
        health = json.loads(podman("inspect", name).stdout)[0]["State"]["Health"]["Status"]
        assert health == "healthy", f"the engine says the container is {health}"
        print(f"healthy {to_healthy:.1f} s after start", flush=True)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{base}/api/projects",
                json={"name": "containers", "swagger_url": f"http://127.0.0.1:{upstream_port}/openapi.json"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            assert response.status == 201, await response.text()

            async def published() -> bool:
                async with session.get(f"{base}/api/catalog/containers") as entry:
                    return entry.status == 200 and (await entry.json())["status"] == "valid"

            await until("the project's collection", published, 60)
            async with session.get(f"{base}/api/catalog/containers/openapi.json") as document:
                assert await document.json() == DOCUMENT, "the catalog serves another document"
            print("registered, collected and read back a project from the catalog", flush=True)
        stopping = time.monotonic()
        podman("stop", "--time", "10", name)
        stopped_in = time.monotonic() - stopping
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        print(f"stopped with SIGTERM in {stopped_in:.1f} s, exit code {state['ExitCode']}", flush=True)
        if stopped_in >= 10 or state["ExitCode"] != 0:
            logs = podman("logs", name, check=False).stdout + podman("logs", name, check=False).stderr
            raise SystemExit(f"image-test: the container did not stop cleanly within 10 s\n{logs[-3000:]}")
        print(f"start to healthy: {to_healthy:.1f} s (total run {time.monotonic() - started:.1f} s)")
    except BaseException:
        logs = podman("logs", name, check=False)
        print((logs.stdout + logs.stderr)[-3000:], file=sys.stderr)
        raise
    finally:
        podman("rm", "--force", name, check=False)
        await upstream.cleanup()


def main() -> None:
    if shutil.which("podman") is None:
        raise SystemExit(
            "image-test: podman is not installed (Debian: apt-get install podman runc debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="catalog-image-") as work:
        containers_conf(Path(work))
        base = os.environ.get("PYTHON_IMAGE") or debian_base(Path(work))
        print(f"base image: {base}", flush=True)
        took = build(base)
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        print(
            f"built {IMAGE} in {took:.0f} s: {size / 1e6:.0f} MB (goal: under {SIZE_GOAL_MB} MB: "
            f"{'yes' if size < SIZE_GOAL_MB * 1e6 else 'no'})",
            flush=True,
        )
        asyncio.run(run_container())
    print("image-test: passed")


if __name__ == "__main__":
    main()
