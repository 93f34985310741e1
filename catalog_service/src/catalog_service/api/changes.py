"""What changed: /api/catalog/{name}/changes, /api/changes and its Atom feed."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from aiohttp import web

from ..compare import by_operation, normalized
from ..errors import Unavailable
from ..keys import COLLECTOR, POOL
from ..store import catalog as catalog_store
from ..store import changes as store
from . import iso, public_origin
from .negotiation import ATOM as ATOM_TYPE
from .negotiation import negotiated

ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 100


def change_body(row: Any) -> dict[str, Any]:
    return {
        "project": row["project"],
        "from_sha256": row["from_sha256"].hex(),
        "to_sha256": row["to_sha256"].hex(),
        "from_version": row["from_version"],
        "to_version": row["to_version"],
        "collected_at": iso(row["collected_at"]),
        "breaking": row["breaking"],
        "changes": [normalized(change) for change in row["changes"]],
    }


async def list_api_changes(
    request: web.Request,
    name: str,
    breaking: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    # `from` is a Python keyword, so no parameter can take it: both are read from the
    # query connexion has already checked against the spec.
    older, newer = request.query.get("from"), request.query.get("to")
    if older is not None or newer is not None:
        return await _between(request, name, older, newer, breaking=breaking)
    rows, total = await store.list_changes(
        request.config_dict[POOL], project=name, breaking=breaking, limit=limit, offset=offset
    )
    return {"items": [change_body(r) for r in rows], "total": total}


async def _between(
    request: web.Request, name: str, older: str | None, newer: str | None, *, breaking: bool
) -> dict[str, Any]:
    """Any two valid versions of an API, compared now (nothing is stored); the one not
    named is the published version."""
    pool = request.config_dict[POOL]
    old = await catalog_store.valid_version(pool, name=name, version=older)
    new = await catalog_store.valid_version(pool, name=name, version=newer)
    changes = await request.config_dict[COLLECTOR].checks.diff(old["content_json"], new["content_json"])
    if changes is None:
        raise Unavailable("the versions could not be compared; try again shortly", retry_after=5)
    if breaking:
        changes = [change for change in changes if change["breaking"]]
    item = {
        "project": name,
        "from_sha256": old["sha256"].hex(),
        "to_sha256": new["sha256"].hex(),
        "from_version": old["version"],
        "to_version": new["version"],
        "collected_at": iso(new["collected_at"]),
        "breaking": any(change["breaking"] for change in changes),
        "changes": changes,
    }
    return {"items": [item], "total": 1}


async def list_changes(
    request: web.Request, breaking: bool = False, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    rows, total = await store.list_changes(
        request.config_dict[POOL], project=None, breaking=breaking, limit=limit, offset=offset
    )
    return {"items": [change_body(r) for r in rows], "total": total}


def _element(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    element.text = text
    return element


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def changes_feed(request: web.Request, breaking: bool = False) -> web.Response:
    rows, _ = await store.list_changes(
        request.config_dict[POOL], project=None, breaking=breaking, limit=FEED_SIZE, offset=0
    )
    origin = public_origin(request)
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    self_url = f"{origin}/api/changes.atom" + ("?breaking=true" if breaking else "")
    _element(feed, "id", self_url)
    _element(feed, "title", "API catalog: " + ("breaking changes" if breaking else "changes"))
    _element(feed, "updated", _stamp(rows[0]["collected_at"] if rows else dt.datetime.now(dt.UTC)))
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": self_url, "type": ATOM_TYPE})
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "alternate", "href": f"{origin}/", "type": "text/html"})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _element(author, "name", "catalog-service")
    for row in rows:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _element(entry, "id", f"{origin}/api/catalog/{quote(row['project'])}/changes#{row['id']}")
        versions = f"{row['from_version'] or '?'} → {row['to_version'] or '?'}"
        label = "breaking change" if row["breaking"] else "change"
        count = len(row["changes"])
        _element(entry, "title", f"{row['project']} {versions}: {count} {label}{'s' if count != 1 else ''}")
        _element(entry, "updated", _stamp(row["collected_at"]))
        ET.SubElement(
            entry,
            f"{{{ATOM}}}link",
            {
                "rel": "alternate",
                "href": f"{origin}/apis/{quote(row['project'])}#changes",
                "type": "text/html",
            },
        )
        ET.SubElement(entry, f"{{{ATOM}}}category", {"term": "breaking" if row["breaking"] else "compatible"})
        lines: list[str] = []
        for about, changes in by_operation([normalized(c) for c in row["changes"]]):
            lines.append(about or "The whole API")
            lines += [f"  [{c['level']}] {c['message']} ({c['id']})" for c in changes]
        _element(entry, "summary", "\n".join(lines), type="text")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return web.Response(
        body=body, content_type=negotiated(request, ATOM_TYPE), charset="utf-8", headers={"Vary": "Accept"}
    )
