"""The request metrics: what prometheus_client's Counter and Histogram would expose."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from catalog_service.metrics import DURATION_BUCKETS, Metrics


def exposed(registry: CollectorRegistry) -> tuple[list[str], list[str]]:
    """The request metrics' lines, and their _created series without the times."""
    lines = [line for line in generate_latest(registry).decode().splitlines() if "catalog_http_" in line]
    created = [re.sub(r" \S+$", "", line) for line in lines if "_created{" in line]
    return sorted(line for line in lines if "_created" not in line), sorted(created)


def test_requests_and_latencies_are_exposed_as_prometheus_client_exposes_them() -> None:
    ours = Metrics()
    reference = CollectorRegistry()
    counter = Counter(
        "catalog_http_requests",
        "HTTP requests served, by operation and status",
        ["operation", "status"],
        registry=reference,
    )
    histogram = Histogram(
        "catalog_http_request_duration_seconds",
        "HTTP request latency by operation",
        ["operation"],
        buckets=DURATION_BUCKETS,
        registry=reference,
    )
    # Latencies on a bound, just past one, past the last, zero; operations and
    # statuses seen once and often.
    observations = [
        ("GET /api/catalog", "200", 0.0012),
        ("GET /api/catalog", "200", 0.005),
        ("GET /api/catalog", "304", 0.0050001),
        ("GET /api/catalog", "200", 0.0),
        ("POST /api/projects", "201", 0.25),
        ("POST /api/projects", "400", 0.2500001),
        ("GET /api/operations", "200", 1.0),
        ("GET /api/operations", "200", 700.0),
        ("unmatched", "404", 0.03),
        *[("GET /api/health", "200", i / 1000) for i in range(1, 300, 7)],
    ]
    for operation, status, seconds in observations:
        ours.observe_request(operation, status, seconds)
        counter.labels(operation=operation, status=status).inc()
        histogram.labels(operation=operation).observe(seconds)
    lines, created = exposed(ours.registry)
    assert (lines, created) == exposed(reference)
    assert 'catalog_http_requests_total{operation="GET /api/catalog",status="200"} 3.0' in lines
    assert (
        'catalog_http_request_duration_seconds_bucket{le="+Inf",operation="GET /api/operations"} 2.0' in lines
    )
