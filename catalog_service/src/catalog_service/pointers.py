"""JSON pointers (RFC 6901): how the service names a place in a document, in errors,
lint findings and changes alike. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def escape(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer(parts: Iterable[Any]) -> str:
    """The pointer to a place, from the keys and indexes leading there."""
    return "".join("/" + escape(part) for part in parts)


def parts(text: str) -> tuple[str, ...]:
    """The keys (unescaped) a pointer names; '' names the whole document."""
    return tuple(unescape(token) for token in text.split("/")[1:]) if text else ()


def resolve(document: Any, text: str) -> Any:
    """The value at a pointer; KeyError naming the key where it stops when there is none."""
    value = document
    for part in parts(text):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value
