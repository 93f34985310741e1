"""URLs strangers give the service: which are acceptable, and how they may be shown."""

from __future__ import annotations

from yarl import URL

from .errors import BadRequest


def redacted(url: str) -> str:
    """The URL as it may appear in answers, pages and logs: without credentials."""
    try:
        parsed = URL(url)
        if parsed.user or parsed.password:
            parsed = parsed.with_user(None).with_password(None)
        return str(parsed)
    except ValueError:
        return "<unparseable URL>"


def checked_swagger_url(raw: str) -> str:
    """The spec checks the shape; this checks that it parses to an http(s) URL with a host."""
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in raw):
        raise BadRequest("swagger_url contains spaces or control characters")
    try:
        url = URL(raw)
        scheme, host, port = url.scheme, url.host, url.port
        text = str(url)
    except (ValueError, TypeError):
        raise BadRequest("swagger_url is not a valid URL") from None
    if scheme not in ("http", "https"):
        raise BadRequest("swagger_url must be an http or https URL")
    if not host:
        raise BadRequest("swagger_url has no host")
    if port is not None and not 0 < port < 65536:
        raise BadRequest("swagger_url has an invalid port")
    return text
