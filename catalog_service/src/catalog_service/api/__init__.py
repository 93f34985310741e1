"""The JSON API under /api: handlers named by the spec's operationIds (see routing)."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from ..keys import SETTINGS


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as the spec's date-time (RFC 3339), or None."""
    return value.isoformat() if value is not None else None


def public_origin(request: web.Request) -> str:
    """Where readers reach this service: CATALOG_PUBLIC_URL, else the request's own
    scheme and Host (which a client chooses, so set the variable behind a proxy)."""
    configured = request.config_dict[SETTINGS].public_url
    return configured or f"{request.scheme}://{request.host}"
