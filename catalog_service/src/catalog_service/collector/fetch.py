"""Downloading a swagger file: one shared aiohttp session, a network policy, hard limits.

The policy is enforced where a socket is made, on the address the name resolved to,
for every connection of every redirect hop: a forbidden address never receives a byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from yarl import URL

from ..settings import IPNetwork
from ..urls import redacted

USER_AGENT = "catalog-service/0.1 (API catalog collector)"
MAX_REDIRECTS = 5

# The addresses the policy refused during the current fetch (each fetch sets its own list).
_refused: ContextVar[list[str] | None] = ContextVar("refused", default=None)


class PolicyRefused(OSError):
    pass


# IPv6 prefixes whose last 32 bits are an IPv4 address a gateway may reach:
# NAT64 (RFC 6052, and the local-use 64:ff9b:1::/48 of RFC 8215), SIIT's
# IPv4-translated ::ffff:0:a.b.c.d (RFC 2765), and the deprecated IPv4-compatible
# ::a.b.c.d (RFC 4291).
_IPV4_CARRYING = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("::/96"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None) if a is not None]
    if any(ip in network for network in _IPV4_CARRYING):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


class NetworkPolicy:
    """Public addresses, plus those inside CATALOG_ALLOWED_NETWORKS; nothing else."""

    def __init__(self, allowed: tuple[IPNetwork, ...] = ()) -> None:
        self.allowed = allowed

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            # An IPv4 address wrapped in IPv6 is judged as the IPv4 address it carries.
            candidates.extend(_embedded_ipv4(ip))
        if any(
            candidate in net
            for candidate in candidates
            for net in self.allowed
            if candidate.version == net.version
        ):
            return True
        return all(c.is_global and not c.is_multicast for c in candidates)

    async def refusal(self, url: str, *, timeout: float = 5.0) -> str | None:
        """Why a connection to ``url`` would be refused now (None: it would be made).
        For a URL kept to be called later (a webhook): said at once to whoever gives
        it. The policy is still applied at every connection, whatever the name
        resolves to by then."""
        disguised = disguised_ipv4(url)
        if disguised is not None:
            return f"the host {disguised[0]!r} is the IP address {disguised[1]} in disguise"
        parsed = URL(url)
        host = parsed.raw_host or ""
        try:
            ipaddress.ip_address(host)
            addresses = {host}
        except ValueError:
            try:
                async with asyncio.timeout(timeout):
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        host, parsed.port, type=socket.SOCK_STREAM
                    )
            except (OSError, TimeoutError, UnicodeError):
                return f"the host {host!r} cannot be resolved"
            addresses = {str(info[4][0]) for info in infos}
        refused = [address for address in addresses if not self.allows(address)]
        return refused_error(refused) if refused else None

    def socket_factory(self) -> Callable[[Any], socket.socket]:
        def make_socket(addr_info: Any) -> socket.socket:
            family, type_, proto, _, sockaddr = addr_info
            address = str(sockaddr[0])
            if not self.allows(address):
                refused = _refused.get()
                if refused is not None:
                    refused.append(address)
                raise PolicyRefused(f"{address} is refused by the network policy")
            return socket.socket(family, type_, proto)

        return make_socket


def create_session(policy: NetworkPolicy) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        socket_factory=policy.socket_factory(),
        limit=64,
        limit_per_host=4,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # No proxies from the environment, no cookies carried between projects.
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


Outcome = Literal["ok", "not_modified", "unreachable", "refused"]


@dataclass
class Fetched:
    outcome: Outcome
    http_status: int | None = None
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    charset: str | None = None
    error: str | None = None
    # Where the body came from, after redirects: relative references resolve against it.
    url: str | None = None


@functools.lru_cache(maxsize=4096)
def disguised_ipv4(url: str) -> tuple[str, str] | None:
    """A host like 2130706433 or 0x7f.1 that C resolvers read as an IPv4 address.
    Remembered per URL: parsing it, and a host name's failed parses as addresses,
    were 4% of the CPU of collecting an unchanged document."""
    try:
        host = URL(url).host or ""
    except ValueError:
        return None
    try:
        ipaddress.ip_address(host)
        return None  # a plain literal: judged by the policy at connect time
    except ValueError:
        pass
    try:
        return host, socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


class NetworkFailure(Exception):
    """What went wrong talking to a stranger's URL, in words for its owner."""

    def __init__(
        self, outcome: Literal["unreachable", "refused"], error: str, http_status: int | None = None
    ):
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.http_status = http_status


def refused_error(addresses: list[str]) -> str:
    return (
        f"refused by the network policy: {', '.join(sorted(set(addresses)))} is not a public "
        "address and not in CATALOG_ALLOWED_NETWORKS"
    )


@contextlib.asynccontextmanager
async def guarded(url: str, *, timeout: float, what: str = "download") -> AsyncIterator[None]:
    """One exchange with ``url`` (a download, a webhook delivery) within ``timeout``
    seconds, every failure the network can cause turned into a NetworkFailure that
    says what happened (and which addresses the policy refused)."""
    disguised = disguised_ipv4(url)
    if disguised is not None:
        raise NetworkFailure(
            "refused",
            f"refused: the host {disguised[0]!r} is the IP address {disguised[1]} in disguise; "
            "write addresses in dotted-decimal form",
        )
    refused: list[str] = []
    token = _refused.set(refused)
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise NetworkFailure("unreachable", f"the {what} did not finish within {timeout:g} seconds") from None
    except aiohttp.TooManyRedirects:
        raise NetworkFailure("unreachable", f"more than {MAX_REDIRECTS} redirects") from None
    except aiohttp.InvalidURL as exc:
        raise NetworkFailure("unreachable", f"invalid URL ({redacted(str(exc.url))})") from None
    except aiohttp.ClientConnectorError as exc:
        if refused:
            raise NetworkFailure("refused", refused_error(refused)) from None
        raise NetworkFailure(
            "unreachable",
            f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or type(exc.os_error).__name__})",
        ) from None
    except aiohttp.ClientResponseError as exc:
        raise NetworkFailure(
            "unreachable", f"bad HTTP response: {exc.message}", http_status=exc.status or None
        ) from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise NetworkFailure(
            "unreachable", f"{what} failed: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    finally:
        _refused.reset(token)


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """Download ``url`` within the limits. Never raises for anything the network does."""
    try:
        async with guarded(url, timeout=timeout):
            return await _fetch(session, url, max_bytes=max_bytes, etag=etag, last_modified=last_modified)
    except NetworkFailure as failure:
        return Fetched(failure.outcome, http_status=failure.http_status, error=failure.error)


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    etag: str | None,
    last_modified: str | None,
) -> Fetched:
    headers = {"Accept": "application/json, application/yaml, text/yaml, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    async with session.get(
        url, headers=headers, allow_redirects=True, max_redirects=MAX_REDIRECTS
    ) as response:
        status = response.status
        if status == 304:
            return Fetched("not_modified", http_status=status)
        if status >= 400:
            return Fetched(
                "unreachable", http_status=status, error=f"HTTP {status} {response.reason or ''}".strip()
            )
        if status >= 300:
            return Fetched(
                "unreachable", http_status=status, error=f"HTTP {status} without a usable Location"
            )
        declared = response.content_length
        if declared is not None and declared > max_bytes:
            return Fetched("unreachable", http_status=status, error=_too_large(max_bytes))
        chunks: list[bytes] = []
        size = 0
        # Counted after decompression: a gzip bomb stops at the limit like any endless body.
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                return Fetched("unreachable", http_status=status, error=_too_large(max_bytes))
            chunks.append(chunk)
        return Fetched(
            "ok",
            http_status=status,
            body=b"".join(chunks),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            charset=response.charset,
            url=str(response.url),
        )


def _too_large(max_bytes: int) -> str:
    return f"the document is larger than CATALOG_MAX_SPEC_BYTES ({max_bytes} bytes)"
