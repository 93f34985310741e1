"""The JSON API under /api: handlers named by the spec's operationIds (see routing)."""

from __future__ import annotations

import datetime as dt


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as the spec's date-time (RFC 3339), or None."""
    return value.isoformat() if value is not None else None
