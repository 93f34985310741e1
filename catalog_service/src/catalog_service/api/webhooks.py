"""Webhook subscriptions: /api/projects/{name}/webhooks and /api/webhooks."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from ..collector.fetch import NetworkPolicy
from ..errors import BadRequest, Forbidden
from ..keys import POOL, SETTINGS
from ..store import projects as projects_store
from ..store import webhooks as store
from ..urls import checked_url, redacted
from ..webhooks import signing
from . import iso
from .auth import caller, require_owner

# Subscriptions one project (or all projects together) may have.
MAX_WEBHOOKS_PER_PROJECT = 20


def webhook_body(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "project": row["project"],
        # A secret in the URL (a token in its query) is shown only to whoever gave it.
        "url": redacted(row["url"]),
        "events": list(row["events"]),
        "description": row["description"],
        "owner": row["owner"],
        "created_at": iso(row["created_at"]),
    }


def delivery_body(row: asyncpg.Record) -> dict[str, Any]:
    pending = row["status"] == "pending"
    return {
        "id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": iso(row["created_at"]),
        "last_attempt_at": iso(row["last_attempt_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if pending else None,
        "give_up_at": iso(row["give_up_at"]),
        "last_http_status": row["last_http_status"],
        "last_error": row["last_error"],
        "delivered_at": iso(row["delivered_at"]),
    }


async def create_project_webhook(
    request: web.Request, name: str, body: dict[str, Any]
) -> tuple[dict[str, Any], int, dict[str, str]]:
    project = await projects_store.get_project(request.config_dict[POOL], name=name)
    identity = require_owner(request, project["owner"])
    return await _create(request, project=name, body=body, owner=identity.name)


async def create_webhook(
    request: web.Request, body: dict[str, Any]
) -> tuple[dict[str, Any], int, dict[str, str]]:
    identity = caller(request)
    if not identity.admin:
        raise Forbidden(
            "only an admin token may subscribe to the events of every project; "
            "subscribe to a project you own at /api/projects/{name}/webhooks"
        )
    return await _create(request, project=None, body=body, owner=identity.name)


async def _create(
    request: web.Request, *, project: str | None, body: dict[str, Any], owner: str
) -> tuple[dict[str, Any], int, dict[str, str]]:
    settings = request.config_dict[SETTINGS]
    url = checked_url(body["url"], field="url")
    reason = await NetworkPolicy(settings.allowed_networks).refusal(url)
    if reason is not None:
        raise BadRequest(f"url is refused: {reason}")
    secret = signing.new_secret()
    row = await store.create_webhook(
        request.config_dict[POOL],
        webhook_id=signing.new_id("wh"),
        project=project,
        url=url,
        events=list(dict.fromkeys(body["events"])),
        secret=secret,
        owner=owner,
        description=body.get("description"),
        max_per_project=MAX_WEBHOOKS_PER_PROJECT,
    )
    # The only answer that carries the secret.
    answer = webhook_body(row) | {"secret": secret}
    return answer, 201, {"Location": f"/api/webhooks/{row['id']}"}


async def list_project_webhooks(
    request: web.Request, name: str, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    project = await projects_store.get_project(request.config_dict[POOL], name=name)
    require_owner(request, project["owner"])
    return await _list(request, project=name, limit=limit, offset=offset)


async def list_webhooks(request: web.Request, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    return await _list(request, project=None, limit=limit, offset=offset)


async def _list(request: web.Request, *, project: str | None, limit: int, offset: int) -> dict[str, Any]:
    identity = caller(request)
    rows, total = await store.list_webhooks(
        request.config_dict[POOL],
        project=project,
        caller=identity.name,
        admin=identity.admin,
        limit=limit,
        offset=offset,
    )
    return {"items": [webhook_body(row) for row in rows], "total": total}


async def _own(request: web.Request, webhook_id: str) -> asyncpg.Record:
    """The subscription, if the caller may see and change it: whoever made it, the
    owner of its project, an admin."""
    row = await store.get_webhook(request.config_dict[POOL], webhook_id=webhook_id)
    identity = caller(request)
    if not (identity.admin or identity.name in (row["owner"], row["project_owner"])):
        raise Forbidden(f"the token {identity.name!r} does not own this webhook")
    return row


async def get_webhook(request: web.Request, webhook_id: str) -> dict[str, Any]:
    return webhook_body(await _own(request, webhook_id))


async def delete_webhook(request: web.Request, webhook_id: str) -> tuple[None, int]:
    await _own(request, webhook_id)
    await store.delete_webhook(request.config_dict[POOL], webhook_id=webhook_id)
    return None, 204


async def list_webhook_deliveries(
    request: web.Request,
    webhook_id: str,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    await _own(request, webhook_id)
    rows, total = await store.list_deliveries(
        request.config_dict[POOL], webhook_id=webhook_id, limit=limit, offset=offset
    )
    return {"items": [delivery_body(row) for row in rows], "total": total}


async def retry_webhook_delivery(
    request: web.Request,
    webhook_id: str,
    delivery_id: str,
) -> tuple[dict[str, Any], int]:
    await _own(request, webhook_id)
    row = await store.redeliver(
        request.config_dict[POOL],
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        give_up_seconds=request.config_dict[SETTINGS].webhook_retry_for,
    )
    # Any replica's deliverer finds it within a second.
    return delivery_body(row), 202
