"""The network policy: decided on the resolved address, at connect time, for every hop."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from catalog_service.collector.fetch import NetworkPolicy
from catalog_service.settings import Settings

from .conftest import attempts, collected, register
from .upstream import Upstream, openapi_30

# Each of these reaches the upstream listening on 127.0.0.1 if nothing stops it.
DISGUISED_LOOPBACK = {
    "ip-literal": "http://127.0.0.1:{port}/docs/doc",
    "dns-name": "http://localhost:{port}/docs/doc",
    "decimal": "http://2130706433:{port}/docs/doc",
    "hex-octet": "http://0x7f.0.0.1:{port}/docs/doc",
    "ipv4-mapped-ipv6": "http://[::ffff:127.0.0.1]:{port}/docs/doc",
    "unspecified": "http://0.0.0.0:{port}/docs/doc",
}


@pytest.mark.parametrize("form", list(DISGUISED_LOOPBACK))
async def test_internal_addresses_in_any_disguise_are_refused_without_a_byte_sent(
    client: TestClient, admin: dict[str, str], aiohttp_server: Any, form: str
) -> None:
    up = Upstream()
    up.serve("doc", openapi_30())
    server = await aiohttp_server(up.app)
    url = DISGUISED_LOOPBACK[form].format(port=server.port)
    await register(client, admin, "sneaky", url)
    project = await collected(client, "sneaky")
    assert project["status"] == "unreachable"
    [attempt] = await attempts(client, "sneaky")
    assert attempt["outcome"] == "refused"
    assert attempt["error"].startswith("refused")
    if form not in ("decimal", "hex-octet"):
        assert "not a public address and not in CATALOG_ALLOWED_NETWORKS" in attempt["error"]
    else:
        assert "the IP address 127.0.0.1 in disguise" in attempt["error"]
    assert sum(up.hits.values()) == 0


async def test_a_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    allowed, forbidden = Upstream(), Upstream()
    forbidden.serve("doc", openapi_30())
    allowed_server = await aiohttp_server(allowed.app, host="127.0.0.1")
    forbidden_server = await aiohttp_server(forbidden.app, host="127.0.0.2")
    client = await make_client(
        dataclasses.replace(settings, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    )
    target = str(forbidden_server.make_url("/docs/doc"))
    await register(client, admin, "hop", str(allowed_server.make_url("/redirect").with_query(to=target)))
    assert (await collected(client, "hop"))["status"] == "unreachable"
    [attempt] = await attempts(client, "hop")
    assert attempt["outcome"] == "refused" and "127.0.0.2" in attempt["error"]
    assert allowed.hits["/redirect"] == 1
    assert sum(forbidden.hits.values()) == 0


async def test_an_allowed_network_is_reachable(
    make_client: Any, settings: Settings, admin: dict[str, str], aiohttp_server: Any
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(
        dataclasses.replace(settings, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    await register(client, admin, "inside", str(server.make_url(up.serve("doc", openapi_30()))))
    assert (await collected(client, "inside"))["status"] == "valid"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("127.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("224.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_policy_allows_only_public_addresses_by_default(address: str, allowed: bool) -> None:
    assert NetworkPolicy().allows(address) is allowed


def test_policy_allows_what_catalog_allowed_networks_names() -> None:
    policy = NetworkPolicy((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")))
    assert policy.allows("10.20.30.40")
    assert policy.allows("::ffff:10.0.0.1")
    assert policy.allows("fd12::1")
    assert not policy.allows("192.168.0.1")
