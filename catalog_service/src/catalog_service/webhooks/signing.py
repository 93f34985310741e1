"""Standard Webhooks signatures (https://www.standardwebhooks.com/): a secret per
subscription, and ``v1,`` + base64(HMAC-SHA256(key, "id.timestamp.body")) per attempt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
# The specification asks for 24 to 64 bytes of key.
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh secret, in the form the specification's libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def signature(secret: str, *, message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header of one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def headers(secret: str, *, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt: the same webhook-id on every attempt, the time of
    this one, and its signature."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id=message_id, timestamp=timestamp, body=body),
        "Content-Type": "application/json",
    }
