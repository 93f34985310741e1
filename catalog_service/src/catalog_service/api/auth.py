"""Bearer tokens: who is calling, and what they may change."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from ..errors import Forbidden
from ..keys import POOL, SETTINGS
from ..store import tokens
from ..store.tokens import Identity

ADMIN_NAME = "admin"


async def bearer_info(token: str, request: web.Request) -> dict[str, Any] | None:
    """connexion's x-bearerInfoFunc: the token's identity, or None for 401."""
    if not token.isascii() or not token.isprintable():
        # Tokens are printable ASCII; a header with other bytes is no token of ours.
        return None
    admin_token = request.config_dict[SETTINGS].admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return {"sub": ADMIN_NAME, "admin": True}
    identity = await tokens.find_identity(request.config_dict[POOL], token=token)
    if identity is None:
        return None
    return {"sub": identity.name, "admin": identity.admin}


def caller(request: web.Request) -> Identity:
    info = request["token_info"]
    return Identity(name=info["sub"], admin=bool(info["admin"]))


def require_owner(request: web.Request, owner: str) -> Identity:
    identity = caller(request)
    if not identity.admin and identity.name != owner:
        raise Forbidden(f"the token {identity.name!r} does not own this project")
    return identity
