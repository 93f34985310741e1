"""What changed between two versions of a document, and whether it breaks clients.

Pure functions over parsed documents: no HTTP, no SQL. The workers call ``diff``.
"""

from __future__ import annotations

from typing import Any

from .diff import diff

__all__ = ["by_operation", "diff", "normalized"]


def normalized(change: dict[str, Any]) -> dict[str, Any]:
    """A change as the checker gives it now, also one stored before changes had an id,
    a level and pointers (its kind is its id; breaking or not is all it said)."""
    if "id" in change and "level" in change:
        return change
    kind = change.get("kind")
    breaking = bool(change.get("breaking"))
    return {
        "id": kind,
        "kind": kind,
        "level": "breaking" if breaking else "info",
        "breaking": breaking,
        "method": change.get("method"),
        "path": change.get("path"),
        "message": change.get("message", ""),
        "old_pointer": None,
        "new_pointer": None,
    }


def by_operation(changes: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """The changes grouped by what they are about: the whole API (None) first, then each
    operation ("POST /pets") or path, in the order they were found."""
    groups: dict[str | None, list[dict[str, Any]]] = {None: []}
    for change in changes:
        label = f"{change['method']} {change['path']}" if change.get("method") else change.get("path")
        groups.setdefault(label, []).append(change)
    return [(label, items) for label, items in groups.items() if items]
