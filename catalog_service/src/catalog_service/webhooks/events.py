"""What a collection tells the subscribers of a project: its events and their bodies.

Pure: the collector says what happened, this says which events it makes and the exact
bytes each delivery carries (a Standard Webhooks payload: type, timestamp, data).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

# Every event a subscription may ask for.
EVENT_TYPES: Final = (
    "api.invalid",
    "api.valid",
    "api.unreachable",
    "api.version.published",
    "api.change.breaking",
    "api.lint.score_dropped",
)

# A delivery carries at most this many changes (with the total beside them).
MAX_CHANGES = 100


@dataclass(frozen=True)
class Collected:
    """One collection of a project, as far as its subscribers care."""

    name: str
    title: str | None
    status_before: str
    status: str
    error: str | None = None
    # A version not seen before was stored (valid or not), and published when valid.
    new_version: bool = False
    published: bool = False
    version: str | None = None
    sha256: str | None = None
    previous_version: str | None = None
    previous_sha256: str | None = None
    changes: list[dict[str, Any]] | None = None
    score_before: int | None = None
    score: int | None = None


def event_types(c: Collected) -> list[str]:
    """The events one collection makes, in the order they happened."""
    found = []
    if c.status == "invalid" and (c.status_before != "invalid" or c.new_version):
        found.append("api.invalid")
    if c.status == "valid" and c.status_before != "valid":
        found.append("api.valid")
    if c.status == "unreachable" and c.status_before != "unreachable":
        found.append("api.unreachable")
    if c.published:
        found.append("api.version.published")
        if any(change.get("breaking") for change in c.changes or ()):
            found.append("api.change.breaking")
        if c.score_before is not None and c.score is not None and c.score < c.score_before:
            found.append("api.lint.score_dropped")
    return found


def events(c: Collected, *, base_url: str, at: dt.datetime) -> list[tuple[str, str]]:
    """Each event of the collection with the body its deliveries carry."""
    return [(event_type, body(event_type, c, base_url=base_url, at=at)) for event_type in event_types(c)]


def body(event_type: str, c: Collected, *, base_url: str, at: dt.datetime) -> str:
    name = quote(c.name, safe="")
    data: dict[str, Any] = {
        "project": c.name,
        "title": c.title,
        "status": c.status,
        "previous_status": c.status_before,
        "links": {
            "entry": f"{base_url}/api/catalog/{name}",
            "page": f"{base_url}/apis/{name}",
            "changes": f"{base_url}/api/catalog/{name}/changes",
        },
    }
    if event_type in ("api.invalid", "api.unreachable"):
        data["error"] = c.error
    if c.new_version and event_type != "api.unreachable":
        data["version"] = {"version": c.version, "sha256": c.sha256}
    if c.published and c.previous_sha256 is not None:
        data["previous_version"] = {"version": c.previous_version, "sha256": c.previous_sha256}
    if event_type in ("api.version.published", "api.change.breaking"):
        changes = c.changes or []
        if event_type == "api.change.breaking":
            changes = [change for change in changes if change.get("breaking")]
        data["changes"] = changes[:MAX_CHANGES]
        data["changes_total"] = len(changes)
    if event_type == "api.lint.score_dropped" or (c.published and c.score is not None):
        data["score"] = c.score
        data["previous_score"] = c.score_before
    stamp = at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # ASCII: a title with an unpaired surrogate (JSON's \ud800) is sent as JSON's escape,
    # never as text PostgreSQL could not store in the outbox.
    return json.dumps({"type": event_type, "timestamp": stamp, "data": data})
