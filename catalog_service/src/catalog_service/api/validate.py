"""POST /api/validate: the collector's own judgement of a document, storing nothing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..domain import Analysis
from ..errors import BadRequest, Unauthorized
from ..keys import COLLECTOR
from ..urls import checked_swagger_url


def _url_request(raw: bytes, content_type: str) -> str | None:
    """The swagger_url of a ``{"swagger_url": ...}`` body; None for a document."""
    if content_type != "application/json":
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, dict) and set(body) == {"swagger_url"} and isinstance(body["swagger_url"], str):
        return body["swagger_url"]
    return None


def _verdict(analysis: Analysis) -> dict[str, Any]:
    return {"valid": analysis.valid, "spec_format": analysis.spec_format, "errors": analysis.errors}


async def validate(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest('the request body is empty: send a document, or {"swagger_url": "..."} with a token')
    collector = request.config_dict[COLLECTOR]
    url = _url_request(raw, request.content_type)
    if url is None:
        return _verdict(await collector.judge(raw, request.charset))
    # Fetching on someone's behalf is a write-like power: it needs a token.
    if not (request.get("token_info") or {}).get("sub"):
        raise Unauthorized("validating a swagger_url needs a bearer token; a document needs none")
    return _verdict(await collector.judge_url(checked_swagger_url(url)))
