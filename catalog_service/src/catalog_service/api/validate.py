"""POST /api/validate and POST /api/diff: the collector's own judgement of documents,
and its comparison of two, storing nothing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from ..domain import Analysis, Busy, TransientFailure
from ..errors import BadRequest, TooManyRequests, Unauthorized, Unavailable
from ..keys import COLLECTOR, SETTINGS
from ..urls import checked_swagger_url

# When a client told to wait may try again.
RETRY_AFTER_SECONDS = 5


@contextlib.contextmanager
def _checks_answered(failed: str, then: str) -> Iterator[None]:
    """A check that cannot run now: 429 when the checks' line is full, 503 when no
    verdict was reached for a reason that is not the document's (``failed`` says what
    could not be done, ``then`` what it means)."""
    try:
        yield
    except Busy:
        raise TooManyRequests(
            "every validation worker for checks is busy and the line is full; try again shortly",
            retry_after=RETRY_AFTER_SECONDS,
        ) from None
    except TransientFailure as exc:
        raise Unavailable(f"{failed}: {exc}; {then}", retry_after=RETRY_AFTER_SECONDS) from None


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
    verdict: dict[str, Any] = {
        "valid": analysis.valid,
        "spec_format": analysis.spec_format,
        "errors": analysis.errors,
    }
    # The API design rules report, for OpenAPI 3.x (Swagger 2.0: they do not apply).
    if analysis.lint is not None and "findings" in analysis.lint:
        verdict["lint"] = analysis.lint
    return verdict


async def validate(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest('the request body is empty: send a document, or {"swagger_url": "..."} with a token')
    collector = request.config_dict[COLLECTOR]
    settings = request.config_dict[SETTINGS]
    identified = bool((request.get("token_info") or {}).get("sub"))
    # Anyone may check a document, within seconds; a team's token buys the full time.
    timeout = None if identified else settings.anonymous_validation_timeout
    url = _url_request(raw, request.content_type)
    with _checks_answered("the document could not be judged", "no verdict was reached"):
        if url is None:
            return _verdict(await collector.judge(raw, request.charset, timeout=timeout))
        # Fetching on someone's behalf is a write-like power: it needs a token.
        if not identified:
            raise Unauthorized("validating a swagger_url needs a bearer token; a document needs none")
        return _verdict(await collector.judge_url(checked_swagger_url(url), timeout=timeout))


async def diff_documents(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    collector = request.config_dict[COLLECTOR]
    settings = request.config_dict[SETTINGS]
    identified = bool((request.get("token_info") or {}).get("sub"))
    timeout = None if identified else settings.anonymous_validation_timeout
    try:
        base, revision = (orjson.dumps(body[part]) for part in ("base", "revision"))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise BadRequest(f"the documents cannot be read as JSON: {exc}") from None
    with _checks_answered("the documents could not be compared", "try again shortly"):
        old, new, changes = await collector.compare(base, revision, timeout=timeout)
    found = changes or []
    return {
        "base": _verdict(old),
        "revision": _verdict(new),
        "breaking": any(change["breaking"] for change in found),
        "changes": found,
    }
