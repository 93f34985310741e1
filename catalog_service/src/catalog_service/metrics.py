"""Prometheus metrics of one process, in a registry of its own (no global state)."""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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
        self.requests = RequestMetrics()
        self.registry.register(self.requests)

    def observe_request(self, operation: str, status: str, seconds: float) -> None:
        self.requests.observe(operation, status, seconds)


class RequestMetrics(Collector):
    """HTTP requests by operation and status, and their latency by operation: what
    a Counter and a Histogram of prometheus_client would expose, counted in plain
    dicts and lists. Theirs take a lock for every count and every bucket, a tenth of
    a cached answer's cost; here every request is counted on the event loop, which
    also answers /metrics."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._created: dict[tuple[str, ...], float] = {}
        # By operation: a count per bucket (the last one: +Inf), then their sum.
        self._latencies: dict[str, list[float]] = {}

    def observe(self, operation: str, status: str, seconds: float) -> None:
        key = (operation, status)
        count = self._counts.get(key)
        if count is None:
            self._created[key] = time.time()
        self._counts[key] = (count or 0) + 1
        latencies = self._latencies.get(operation)
        if latencies is None:
            latencies = self._latencies[operation] = [0.0] * (len(DURATION_BUCKETS) + 2)
            self._created[(operation,)] = time.time()
        # The first bucket whose bound the latency does not exceed, as Histogram.observe.
        latencies[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        latencies[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "catalog_http_requests",
            "HTTP requests served, by operation and status",
            labels=["operation", "status"],
        )
        for key, count in self._counts.items():
            requests.add_metric(list(key), count, created=self._created[key])
        yield requests
        latency = HistogramMetricFamily(
            "catalog_http_request_duration_seconds", "HTTP request latency by operation", labels=["operation"]
        )
        bounds = [*map(floatToGoString, DURATION_BUCKETS), "+Inf"]
        for operation, latencies in self._latencies.items():
            cumulative = list(itertools.accumulate(latencies[:-1]))
            latency.add_metric([operation], list(zip(bounds, cumulative, strict=True)), latencies[-1])
            latency.samples.append(
                Sample(latency.name + "_created", {"operation": operation}, self._created[(operation,)])
            )
        yield latency


def operation_of(request: web.Request) -> str:
    """A request's operation as the metrics name it: its method and route ("GET
    /api/catalog/{name}"), whatever the values in the path."""
    route = request.match_info.route.resource
    return f"{request.method} {route.canonical}" if route is not None else "unmatched"
