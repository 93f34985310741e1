"""Bearer tokens: only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from ..errors import Conflict
from .db import Executor


@dataclass(frozen=True)
class Identity:
    name: str
    admin: bool


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


async def create_token(db: Executor, *, name: str, admin: bool) -> str:
    token = "cat_" + secrets.token_urlsafe(32)
    try:
        await db.execute(
            "INSERT INTO tokens (name, token_hash, admin) VALUES ($1, $2, $3)",
            name,
            hash_token(token),
            admin,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a token named {name!r} exists already") from None
    return token


async def find_identity(db: Executor, *, token: str) -> Identity | None:
    # The lookup is by a hash of a high-entropy secret, so its timing tells nothing usable.
    row = await db.fetchrow("SELECT name, admin FROM tokens WHERE token_hash = $1", hash_token(token))
    return Identity(row["name"], row["admin"]) if row else None
