"""A real upstream "project" for tests: an aiohttp app serving documents and misbehaving."""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
from collections import Counter
from typing import Any

from aiohttp import web

SWAGGER_2 = {
    "swagger": "2.0",
    "info": {"title": "Afvalcontainers", "version": "1.2.0", "description": "Waar staan de containers?"},
    "host": "api.example.org",
    "basePath": "/afval",
    "schemes": ["https"],
    "paths": {
        "/containers": {
            "get": {
                "operationId": "listContainers",
                "summary": "Alle containers",
                "tags": ["afval"],
                "parameters": [{"name": "wijk", "in": "query", "type": "string"}],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Containers"}}},
            },
            "post": {
                "operationId": "addContainer",
                "summary": "Een container plaatsen",
                "deprecated": True,
                "parameters": [
                    {
                        "name": "body",
                        "in": "body",
                        "required": True,
                        "schema": {"$ref": "#/definitions/Container"},
                    }
                ],
                "responses": {"201": {"description": "created"}},
            },
        }
    },
    "definitions": {
        "Container": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "fractie": {"type": "string"}},
        },
        "Containers": {"type": "array", "items": {"$ref": "#/definitions/Container"}},
    },
}

SWAGGER_2_YAML = """\
swagger: "2.0"
info:
  title: Parkeervakken
  version: "0.9"
paths:
  /vakken/{id}:
    get:
      operationId: getVak
      summary: Eén parkeervak
      parameters:
        - {name: id, in: path, required: true, type: integer}
      responses:
        "200": {description: ok}
"""

# Swagger 2.0 that parses but breaks the schema: a path parameter that is not required
# and a response without its description.
SWAGGER_2_INVALID = {
    "swagger": "2.0",
    "info": {"title": "Kapot", "version": "1"},
    "paths": {"/x": {"get": {"responses": {"200": {}}}}},
}

YAML_BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
        for i in range(9)
    ]
    + ["openapi: 3.0.0"]
)


def openapi_30(title: str = "Meldingen", version: str = "1.0.0", paths: int = 1) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": {
            f"/meldingen/{i}": {
                "get": {
                    "operationId": f"getMelding{i}",
                    "summary": f"Melding {i}",
                    "responses": {"200": {"description": "ok"}},
                }
            }
            for i in range(paths)
        },
    }


# Two more real-looking APIs: OpenAPI 3.0 in Dutch, 3.1 in English.
PARKEREN = {
    "openapi": "3.0.3",
    "info": {
        "title": "Parkeervergunningen",
        "version": "2.1.0",
        "description": "Vergunningen voor bewoners",
        "contact": {
            "name": "Team Parkeren",
            "email": "parkeren@example.org",
            "url": "https://example.org/parkeren",
        },
    },
    "paths": {
        "/vergunningen": {
            "get": {
                "operationId": "zoekVergunningen",
                "summary": "Zoek vergunningen",
                "responses": {"200": {"description": "ok"}},
            },
            "post": {
                "operationId": "vraagVergunningAan",
                "summary": "Vraag een vergunning aan",
                "responses": {"201": {"description": "ok"}},
            },
        },
        "/vergunningen/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "delete": {
                "operationId": "trekIn",
                "summary": "Trek een vergunning in",
                "deprecated": True,
                "responses": {"204": {"description": "ok"}},
            },
        },
    },
}

WEATHER = {
    "openapi": "3.1.0",
    "info": {
        "title": "City weather",
        "version": "1.0.0",
        "description": "Measurements of the weather stations",
    },
    "paths": {
        "/stations/{station}/readings": {
            "parameters": [{"name": "station", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "operationId": "getReadings",
                "summary": "Latest temperature readings of a station",
                "responses": {"200": {"description": "ok"}},
            },
        }
    },
}


@functools.cache
def gzip_bomb() -> bytes:
    """20 MiB of JSON whitespace (ten times the tests' limit) in about 20 KiB of gzip."""
    return gzip.compress(b"{" + b" " * (20 * 1024 * 1024) + b"}", compresslevel=9)


class Upstream:
    """Routes under /docs/{name} serve registered bodies; the rest misbehave on purpose."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[bytes, str]] = {}
        self.hits: Counter[str] = Counter()
        self.if_none_match: list[str | None] = []
        self.delay = 0.0
        self.app = web.Application()
        self.app.router.add_route("GET", "/{tail:.*}", self.handle)

    def serve(
        self, name: str, body: bytes | str | dict[str, Any], content_type: str = "application/json"
    ) -> str:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.docs[name] = (body, content_type)
        return f"/docs/{name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if path.startswith("/docs/"):
            name = path.removeprefix("/docs/")
            if name not in self.docs:
                raise web.HTTPNotFound()
            body, content_type = self.docs[name]
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            self.if_none_match.append(request.headers.get("If-None-Match"))
            if request.headers.get("If-None-Match") == etag and "no-etag" not in name:
                return web.Response(status=304, headers={"ETag": etag})
            headers = {} if "no-etag" in name else {"ETag": etag}
            return web.Response(body=body, headers={**headers, "Content-Type": content_type})
        if path == "/status/404":
            raise web.HTTPNotFound()
        if path == "/status/500":
            raise web.HTTPInternalServerError()
        if path == "/hang":
            await asyncio.sleep(60)
        if path == "/drip":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"openapi": "3.0.0", "x": "')
            for _ in range(600):
                await asyncio.sleep(0.1)
                await response.write(b"a")
            return response
        if path == "/endless":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            chunk = b"a" * 65536
            for _ in range(100_000):
                await response.write(chunk)
            return response
        if path == "/gzip-bomb":
            return web.Response(
                body=gzip_bomb(), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )
        if path == "/redirect":
            raise web.HTTPFound(location=request.query["to"])
        if path == "/redirect-loop":
            raise web.HTTPFound(location="/redirect-loop")
        raise web.HTTPNotFound()
