"""Prometheus metrics of one process, in a registry of its own (no global state)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.collections = Counter(
            "catalog_collections",
            "Collection attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "catalog_fetch_duration_seconds",
            "Time to download one swagger file",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.validation_seconds = Histogram(
            "catalog_validation_duration_seconds",
            "Time to parse and validate one new document in a worker process",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "catalog_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "catalog_http_requests",
            "HTTP requests served, by operation and status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "catalog_http_request_duration_seconds",
            "HTTP request latency by operation",
            ["operation"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

        # labels() validates and locks on every call: the children are kept instead
        # (there is one per route and status, a bounded set).
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe_request(self, operation: str, status: str, seconds: float) -> None:
        children = self._children.get((operation, status))
        if children is None:
            children = (
                self.http_requests.labels(operation=operation, status=status),
                self.http_seconds.labels(operation=operation),
            )
            self._children[(operation, status)] = children
        children[0].inc()
        children[1].observe(seconds)


def operation_of(request: web.Request) -> str:
    """A request's operation as the metrics name it: its method and route ("GET
    /api/catalog/{name}"), whatever the values in the path."""
    route = request.match_info.route.resource
    return f"{request.method} {route.canonical}" if route is not None else "unmatched"
