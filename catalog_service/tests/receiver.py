"""A real webhook receiver for tests: an aiohttp app that keeps every delivery and can
be down, slow or hanging on purpose. Signatures are checked with standardwebhooks,
the Standard Webhooks specification's own library, not with our code."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    # When it arrived (time.monotonic()).
    arrived: float = 0.0

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verified(self, secret: str) -> dict[str, Any]:
        """The body, once standardwebhooks has checked the signature (it raises if not)."""
        parsed: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return parsed


class Receiver:
    def __init__(self) -> None:
        self.received: list[Delivery] = []
        # The statuses of the next answers, in order; 204 when none is left.
        self.answers: list[int] = []
        # While set, requests wait this many seconds before any answer.
        self.hang = 0.0
        self.arrived = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        delivery = Delivery(request.path, dict(request.headers), await request.read(), time.monotonic())
        async with self.arrived:
            self.received.append(delivery)
            self.arrived.notify_all()
        if self.hang:
            await asyncio.sleep(self.hang)
        status = self.answers.pop(0) if self.answers else 204
        return web.Response(status=status)

    async def wait_for(self, count: int, timeout: float = 30) -> list[Delivery]:
        """The deliveries, once at least ``count`` have arrived."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    def types(self) -> list[str]:
        return [delivery.event["type"] for delivery in self.received]
