"""Our spec is a product: a client generated from it, code nobody here wrote, just works.

openapi-python-client generates a client from the live service's /api/openapi.json
with its default settings; the generation must finish without an error or a
warning, and the client then drives the service through a whole session.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from .conftest import ADMIN_TOKEN, free_port
from .processes import BIN, CATALOG_SERVICE, running, serve_env
from .receiver import Receiver
from .upstream import SWAGGER_2, SWAGGER_2_INVALID, Upstream, openapi_30

PACKAGE = "catalog_service_client"


def generate(base: str, where: Path) -> Path:
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--url",
            f"{base}/api/openapi.json",
            "--output-path",
            str(where),
        ],
        # Its post-hooks format the code with ruff, found on PATH.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    return where


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Any]:
    """Imports of the generated package, forgotten again after the test."""
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
    finally:
        sys.path.remove(str(tmp_path / "client"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


async def until(check: Any, *, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "gave up waiting"
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_a_client_generated_from_our_spec_drives_a_whole_session(
    database_url: str, db: asyncpg.Connection, tmp_path: Path, aiohttp_server: Any, generated: Any
) -> None:
    up = Upstream()
    upstream = await aiohttp_server(up.app)
    v1 = openapi_30(title="Meldingen openbare ruimte", paths=3)
    parkeren_url = str(upstream.make_url(up.serve("meldingen", v1)))
    kapot_url = str(upstream.make_url(up.serve("kapot", SWAGGER_2_INVALID)))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(database_url, port, CATALOG_ALLOWED_NETWORKS="127.0.0.0/8")
    with running([CATALOG_SERVICE, "serve"], env=env, base_url=base, log=tmp_path / "serve.log"):
        generate(base, tmp_path / "client")
        client_module = generated("")
        projects = {
            n: generated(f"api.projects.{n}")
            for n in (
                "create_project",
                "list_projects",
                "get_project",
                "refresh_project",
                "delete_project",
                "validate",
            )
        }
        catalog = {
            n: generated(f"api.catalog.{n}")
            for n in (
                "list_catalog",
                "get_catalog_entry",
                "get_openapi_json",
                "get_openapi_yaml",
                "list_versions",
                "search_operations",
            )
        }
        changes = generated("api.changes.list_api_changes")
        hooks = {
            n: generated(f"api.webhooks.{n}")
            for n in ("create_project_webhook", "get_webhook", "list_webhook_deliveries")
        }
        models = generated("models")

        async with (
            client_module.AuthenticatedClient(base_url=f"{base}/api", token=ADMIN_TOKEN) as admin,
            client_module.Client(base_url=f"{base}/api") as anonymous,
        ):
            # Register two projects: one valid document, one invalid.
            created = await projects["create_project"].asyncio_detailed(
                client=admin,
                body=models.ProjectCreate(
                    name="meldingen", swagger_url=parkeren_url, tags=["openbare-ruimte"]
                ),
            )
            assert created.status_code == 201
            assert (
                created.parsed.name == "meldingen"
                and created.headers["Location"] == "/api/projects/meldingen"
            )
            await projects["create_project"].asyncio(
                client=admin, body=models.ProjectCreate(name="kapot", swagger_url=kapot_url)
            )
            taken = await projects["create_project"].asyncio(
                client=admin, body=models.ProjectCreate(name="kapot", swagger_url=kapot_url)
            )
            assert isinstance(taken, models.Problem) and taken.status == 409

            listed = await projects["list_projects"].asyncio(client=anonymous)
            assert [p.name for p in listed.items] == ["kapot", "meldingen"] and listed.total == 2

            async def collected() -> Any:
                entries = await catalog["list_catalog"].asyncio(client=anonymous)
                return entries if all(e.status != models.Status.PENDING for e in entries.items) else None

            entries = await until(collected)
            assert {e.name: e.status for e in entries.items} == {
                "kapot": models.Status.INVALID,
                "meldingen": models.Status.VALID,
            }

            # Search, and an entry with its validation errors.
            found = await catalog["list_catalog"].asyncio(client=anonymous, q="openbare ruimte")
            assert [e.name for e in found.items] == ["meldingen"]
            broken = await catalog["get_catalog_entry"].asyncio("kapot", client=anonymous)
            assert isinstance(broken, models.CatalogEntryDetail)
            assert broken.validation_errors and all(e.message for e in broken.validation_errors)
            operations = await catalog["search_operations"].asyncio(
                client=anonymous, project="meldingen", method=models.SearchOperationsMethod.GET
            )
            assert operations.total == 3

            # The published document, as JSON and as YAML.
            document = await catalog["get_openapi_json"].asyncio("meldingen", client=anonymous)
            assert document.to_dict() == v1
            as_yaml = await catalog["get_openapi_yaml"].asyncio("meldingen", client=anonymous)
            assert yaml.safe_load(as_yaml) == v1

            # The owners want to hear of a breaking change.
            receiver = Receiver()
            receiver_server = await aiohttp_server(receiver.app)
            subscription = await hooks["create_project_webhook"].asyncio(
                "meldingen",
                client=admin,
                body=models.WebhookCreate(
                    url=str(receiver_server.make_url("/hook")), events=[models.EventType.API_CHANGE_BREAKING]
                ),
            )
            assert isinstance(subscription, models.WebhookCreated)
            assert subscription.secret.startswith("whsec_")
            shown = await hooks["get_webhook"].asyncio(subscription.id, client=admin)
            assert isinstance(shown, models.Webhook) and shown.project == "meldingen"

            # A new version that removes an operation: a second version and a breaking change.
            v2 = copy.deepcopy(v1)
            v2["info"]["version"] = "2.0.0"
            del v2["paths"]["/meldingen/2"]
            up.serve("meldingen", v2)
            refreshed = await projects["refresh_project"].asyncio_detailed("meldingen", client=admin)
            assert refreshed.status_code == 202

            async def two_versions() -> Any:
                versions = await catalog["list_versions"].asyncio("meldingen", client=anonymous)
                return versions if versions.total == 2 else None

            versions = await until(two_versions)
            assert [v.version for v in versions.items] == ["2.0.0", "1.0.0"]
            changed = await changes.asyncio("meldingen", client=anonymous)
            assert changed.total == 1 and changed.items[0].breaking is True
            [delivery] = await receiver.wait_for(1)
            event = models.WebhookEvent.from_dict(delivery.verified(subscription.secret))
            assert event.type_ == models.EventType.API_CHANGE_BREAKING
            assert event.data.project == "meldingen" and event.data.changes

            async def delivered() -> Any:
                sent = await hooks["list_webhook_deliveries"].asyncio(subscription.id, client=admin)
                return sent if sent.items[0].status.value == "delivered" else None

            sent = await until(delivered)
            assert sent.items[0].id == delivery.id

            # Validate without storing: a document anonymously, a URL with a token.
            verdict = await projects["validate"].asyncio(
                client=anonymous, body=models.ValidateRequest.from_dict(SWAGGER_2)
            )
            assert verdict.valid is True and verdict.errors == []
            fetched = await projects["validate"].asyncio(
                client=admin, body=models.ValidateRequest(swagger_url=kapot_url)
            )
            assert fetched.valid is False and fetched.errors

            # Delete, and it is gone.
            deleted = await projects["delete_project"].asyncio_detailed("kapot", client=admin)
            assert deleted.status_code == 204
            gone = await projects["get_project"].asyncio("kapot", client=anonymous)
            assert isinstance(gone, models.Problem) and gone.status == 404
