"""POST /api/validate: the collector's fetch/parse/validate pipeline, storing nothing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from ..collector.analyze import Analysis
from ..collector.fetch import fetch
from ..errors import BadRequest, Unauthorized
from ..keys import FETCH_SESSION, POOL, SETTINGS, VALIDATORS
from ..store import collector as store
from .projects import checked_swagger_url


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
    settings = request.config_dict[SETTINGS]
    raw = await request.read()
    if not raw.strip():
        raise BadRequest('the request body is empty: send a document, or {"swagger_url": "..."} with a token')
    charset = request.charset
    url = _url_request(raw, request.content_type)
    if url is not None:
        # Fetching on someone's behalf is a write-like power: it needs a token.
        if not (request.get("token_info") or {}).get("sub"):
            raise Unauthorized("validating a swagger_url needs a bearer token; a document needs none")
        fetched = await fetch(
            request.config_dict[FETCH_SESSION],
            checked_swagger_url(url),
            timeout=settings.fetch_timeout,
            max_bytes=settings.max_spec_bytes,
        )
        if fetched.body is None:
            return {"valid": False, "spec_format": None, "errors": [{"message": fetched.error or "not downloaded", "path": ""}]}
        raw, charset = fetched.body, fetched.charset
    known = await store.find_analysis(request.config_dict[POOL], sha256=hashlib.sha256(raw).digest())
    if known is not None:
        return _verdict(known)
    return _verdict(await request.config_dict[VALIDATORS].analyze(raw, charset))
