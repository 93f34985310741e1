"""problem+json (RFC 9457) for every error, wherever it is raised."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from connexion.exceptions import ExtraParameterProblem, ProblemException

from ..errors import CatalogError
from ..keys import POOL
from ..store.db import UNREACHABLE

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Request bodies of the API are small; only a document sent to /api/validate may be
# as large as the largest accepted swagger file.
MAX_JSON_BODY = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The errors that mean the database cannot be reached right now (answered with a 503).
DATABASE_ERRORS = UNREACHABLE


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"


# How long a connection may take to deliver a request's head (line and headers).
HEADER_SECONDS = 15.0

# Headers of aiohttp's own errors that the problem answer must keep (RFC 9110 wants
# Allow on a 405; Retry-After tells a client when to come back).
KEPT_HEADERS = ("Allow", "Retry-After")


def problem_response(
    status: int, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"type": "about:blank", "title": title or _phrase(status), "status": status, "detail": detail}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_JSON, headers=headers)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside the API: turn domain and database errors into connexion's problems."""
    try:
        return await handler(request)
    except ExtraParameterProblem as exc:
        unknown = ", ".join(sorted(exc.extra_query or exc.extra_formdata))
        raise ProblemException(
            status=400, title="Bad Request", detail=f"this operation takes no parameter named {unknown}"
        ) from None
    except ProblemException as exc:
        # Some of connexion's own problems (strict parameters) come without a title.
        exc.title = exc.title or _phrase(exc.status)
        exc.detail = exc.detail or _phrase(exc.status)
        raise
    except CatalogError as exc:
        raise ProblemException(
            status=exc.status, title=exc.title, detail=exc.detail, headers=exc.headers
        ) from None
    except DATABASE_ERRORS as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        # Connections opened before an outage are useless after it: replace them all.
        await request.config_dict[POOL].expire_connections()
        raise ProblemException(
            status=503, title="Service Unavailable", detail="the database cannot be reached"
        ) from None


FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def unstorable_text(value: object) -> str | None:
    """Where ``value`` holds text PostgreSQL cannot store (NUL, an unpaired surrogate),
    as a sentence naming the place; None when it holds none. Iterative: a body nested
    as deep as JSON allows is no reason for a RecursionError."""
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"{where or 'the request body'} contains a NUL character, which cannot be stored"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{where or 'the request body'} contains an unpaired surrogate, which cannot be stored"
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, f"a field name in {where or 'the request body'}"))
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


# The operations whose bodies are whole documents, not small JSON objects: any
# document for /api/validate (JSON or YAML), two JSON documents for /api/diff.
DOCUMENT_ROUTES = frozenset({"/api/validate", "/api/validate/", "/api/diff", "/api/diff/"})
JSON_DOCUMENT_ROUTES = frozenset({"/api/diff", "/api/diff/"})


def _route(request: web.Request) -> str:
    """Decided by the route the request matched, never by how its path ends: a project
    may be named 'validate'."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bodies of the JSON routes: small, JSON, and text PostgreSQL can store.

    /api/validate takes raw documents of any size up to client_max_size and is
    left to its handler.
    """
    if request.content_type in FORM_TYPES:
        # connexion parses form bodies before any handler runs, and crashes on a
        # multipart Content-Type without a boundary. No route of ours takes forms.
        return problem_response(415, "this API takes no form bodies")
    route = _route(request)
    if request.body_exists and route in JSON_DOCUMENT_ROUTES and request.content_type != "application/json":
        return problem_response(415, "request bodies are application/json")
    if request.body_exists and route not in DOCUMENT_ROUTES:
        if request.content_type != "application/json":
            return problem_response(415, "request bodies are application/json")
        too_large = web.HTTPRequestEntityTooLarge(
            max_size=MAX_JSON_BODY, actual_size=request.content_length or MAX_JSON_BODY + 1
        )
        if (request.content_length or 0) > MAX_JSON_BODY:
            raise too_large
        # A chunked body has no length up front: read it (bounded by client_max_size).
        body = await request.read()
        if len(body) > MAX_JSON_BODY:
            raise too_large
        try:
            parsed = json.loads(body)
        except RecursionError:
            return problem_response(400, "the request body nests too deeply")
        except ValueError:
            # connexion would report the raw text "is not of type 'object'".
            return problem_response(400, "the request body is not valid JSON")
        unstorable = unstorable_text(parsed)
        if unstorable is not None:
            return problem_response(400, unstorable)
    return await handler(request)


@web.middleware
async def outer_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the API (and as a last net): aiohttp's own errors become problem+json."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kept = {name: exc.headers[name] for name in KEPT_HEADERS if name in exc.headers}
        text = exc.text or ""
        detail = text if text and not text.startswith(f"{exc.status}:") else exc.reason
        return problem_response(exc.status, detail, headers=kept)
    except CatalogError as exc:
        return problem_response(exc.status, exc.detail, title=exc.title, headers=exc.headers)
    except DATABASE_ERRORS:
        return problem_response(503, "the database cannot be reached")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return problem_response(500, "an unexpected error occurred; it has been logged")
    if response.status == 405 and "Allow" not in response.headers:
        # connexion turns the router's 405 into a problem of its own and drops the
        # Allow header RFC 9110 requires; the router still knows what it allowed.
        refused = getattr(request.match_info, "http_exception", None)
        if refused is not None and "Allow" in refused.headers:
            response.headers["Allow"] = refused.headers["Allow"]
    return response


class ProblemRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, with two changes.

    Requests it cannot parse (a request line or header over 8 KiB, a bad method, a
    broken header) are answered with problem+json as well: they never reach the app
    or its middlewares, and aiohttp answers them in text/plain, echoing a piece of
    the request (which may hold a secret).

    A connection must deliver a whole request head within HEADER_SECONDS of opening or
    of its last request, else it is closed: aiohttp has no such deadline, so a client
    sending its headers a byte at a time could hold a connection forever.
    """

    _header_deadline: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, header_timeout: float = HEADER_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._header_deadline = loop.call_later(self._header_timeout, self._headers_due, self._request_count)

    def _headers_due(self, requests_before: int) -> None:
        if self._request_count == requests_before and self._current_request is None:
            log.info("closing a connection that sent no complete request head in %g s", self._header_timeout)
            self.force_close()
            if self.transport is not None:
                self.transport.close()
            return
        self._arm_header_deadline()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response went out already: the connection is beyond saving.
            raise ConnectionError("a response was sent already; cannot send the error")
        if status >= 500:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
        else:
            # Not aiohttp's message: it quotes the request, which may hold a secret.
            log.info("unparseable request from %s: %s", request.remote, type(exc).__name__)
        if isinstance(exc, LineTooLong):
            detail = "the request line or a header is longer than the server accepts (8190 bytes)"
        elif isinstance(exc, BadHttpMessage):
            detail = "the request is not well-formed HTTP"
        elif status >= 500:
            detail = "an unexpected error occurred; it has been logged"
        else:
            detail = _phrase(status)
        problem = problem_response(status, detail)
        problem.force_close()
        return problem


def answer_unparseable_requests_with_problems() -> None:
    """Make every server of this process use ProblemRequestHandler. aiohttp offers no
    parameter for the handler class: its Server looks the name up when a connection
    opens. Called once by `serve`, not at import."""
    web_server.RequestHandler = ProblemRequestHandler  # type: ignore[attr-defined]
