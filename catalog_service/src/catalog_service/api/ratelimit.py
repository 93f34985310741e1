"""Rate limits per client address: writes, and anonymous checks (POST /api/validate).

Token buckets in memory, per replica: each address may spend ``per_minute`` requests
a minute, in bursts of up to a quarter of that. A request over the limit is a 429
problem with Retry-After, before connexion or a handler does any work. The address is
the peer's (aiohttp's ``request.remote``); behind a proxy that is the proxy's, so a
proxy should limit as well.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from aiohttp import web

from ..errors import TooManyRequests
from .problems import Handler

# Addresses remembered at most; the least recently seen are forgotten first.
MAX_ADDRESSES = 10_000
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class Buckets:
    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute / 4)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, address: str, now: float | None = None) -> float:
        """0 when ``address`` may go ahead now (and it is counted); else the seconds
        until it may."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[address] = (tokens, now)
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        return wait


WRITES = web.AppKey("write_buckets", Buckets)
CHECKS = web.AppKey("check_buckets", Buckets)


def setup(app: web.Application, *, write_rate: int, check_rate: int) -> None:
    app[WRITES] = Buckets(write_rate)
    app[CHECKS] = Buckets(check_rate)


def _kind(request: web.Request) -> web.AppKey[Buckets] | None:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    if canonical.startswith(("/api/validate", "/api/diff")):
        # A team's token is accountable; anonymous checks are limited per address.
        return None if "Authorization" in request.headers else CHECKS
    if request.method in WRITE_METHODS and canonical.startswith(("/api/projects", "/api/webhooks")):
        return WRITES
    return None


@web.middleware
async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    kind = _kind(request)
    if kind is not None:
        wait = request.config_dict[kind].take(request.remote or "unknown")
        if wait:
            what = "checks without a token" if kind is CHECKS else "writes"
            raise TooManyRequests(
                f"too many {what} from this address; try again in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )
    return await handler(request)
