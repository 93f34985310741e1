"""RFC 9727: /.well-known/api-catalog, a linkset of every published API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from ..keys import POOL
from ..store import catalog as store
from . import public_origin

LINKSET = 'application/linkset+json; profile="https://www.rfc-editor.org/info/rfc9727"'


async def api_catalog(request: web.Request) -> web.Response:
    """A linkset of every published API, for generic discovery tools."""
    origin = public_origin(request)
    apis = await store.published_names(request.config_dict[POOL])
    contexts: list[dict[str, Any]] = [
        {
            "anchor": f"{origin}/.well-known/api-catalog",
            "item": [{"href": f"{origin}/api/catalog/{quote(a['name'])}"} for a in apis],
        }
    ]
    for api in apis:
        quoted = quote(api["name"])
        entry: dict[str, Any] = {
            "anchor": f"{origin}/api/catalog/{quoted}",
            "service-desc": [
                {"href": f"{origin}/api/catalog/{quoted}/openapi.json", "type": "application/json"},
                {"href": f"{origin}/api/catalog/{quoted}/openapi.yaml", "type": "application/yaml"},
            ],
            "service-doc": [
                {
                    "href": f"{origin}/api/browse/?{urlencode({'primaryName': api['name']})}",
                    "type": "text/html",
                }
            ],
        }
        if api["title"]:
            entry["service-desc"][0]["title"] = api["title"]
        contexts.append(entry)
    return web.Response(text=json.dumps({"linkset": contexts}), headers={"Content-Type": LINKSET})
