"""URLs strangers give the service: which are acceptable, and how they may be shown."""

from __future__ import annotations

import functools

from yarl import URL

from .errors import BadRequest

# Query parameters that carry a secret more often than not (API keys, signed URLs,
# OAuth tokens); compared without case, '-' and '_'.
SECRET_PARAMETERS = frozenset(
    {
        "token", "accesstoken", "apikey", "key", "sig", "signature", "secret", "clientsecret",
        "password", "passwd", "pwd", "auth", "authorization", "credential", "credentials",
        "code", "session", "sessionid", "jwt", "xamzsignature", "xamzcredential",
        "xamzsecuritytoken", "xgoogsignature", "xgoogcredential",
    }
)  # fmt: skip
REDACTED = "REDACTED"


def _secret(name: str) -> bool:
    plain = name.lower().replace("-", "").replace("_", "")
    return plain in SECRET_PARAMETERS or plain.endswith(
        ("token", "secret", "apikey", "password", "signature")
    )


@functools.lru_cache(maxsize=16384)
def redacted(url: str) -> str:
    """The URL as it may appear in answers, pages and logs: without credentials, and
    with the value of every query parameter that looks like a secret replaced.
    Remembered: every page of the catalog shows the URL of each of its APIs."""
    try:
        parsed = URL(url)
        if parsed.user or parsed.password:
            parsed = parsed.with_user(None).with_password(None)
        if any(_secret(name) for name in parsed.query):
            query = [(name, REDACTED if _secret(name) else value) for name, value in parsed.query.items()]
            parsed = parsed.with_query(query)
        return str(parsed)
    except (ValueError, TypeError):
        return "<unparseable URL>"


def checked_swagger_url(raw: str) -> str:
    return checked_url(raw, field="swagger_url")


def checked_url(raw: str, *, field: str) -> str:
    """The spec checks the shape; this checks that it parses to an http(s) URL with a host."""
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in raw):
        raise BadRequest(f"{field} contains spaces or control characters")
    try:
        url = URL(raw)
        scheme, host, port = url.scheme, url.host, url.port
        text = str(url)
    except (ValueError, TypeError):
        raise BadRequest(f"{field} is not a valid URL") from None
    if scheme not in ("http", "https"):
        raise BadRequest(f"{field} must be an http or https URL")
    if not host:
        raise BadRequest(f"{field} has no host")
    if port is not None and not 0 < port < 65536:
        raise BadRequest(f"{field} has an invalid port")
    return text
