"""Prometheus metrics, in a registry per app (no process-global state)."""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = HttpRequests()
        self.registry.register(self.http)
        self.batch_size = Histogram(
            "jobtrail_writer_group_commands",
            "Commands committed per transaction.",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.events = Counter(
            "jobtrail_events_recorded",
            "Events recorded in the event store.",
            registry=self.registry,
        )

        self.claims = Counter(
            "jobtrail_worker_claims",
            "Claims answered: a job was claimed, or none came due in time.",
            ("outcome",),
            registry=self.registry,
        )
        self.leases_expired = Counter(
            "jobtrail_leases_expired",
            "Attempts ended by the reaper because their lease lapsed.",
            registry=self.registry,
        )
        self.sse_subscribers = Gauge(
            "jobtrail_sse_subscribers",
            "Open SSE streams (live-feed subscribers).",
            registry=self.registry,
        )
        self.claims_waiting = Gauge(
            "jobtrail_worker_claims_waiting",
            "Long-polling claims waiting for a job.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Any other method is counted as OTHER: a client must not mint label values at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpRequests:
    """Requests answered, by method, route and status, and their latency by route.

    Plain numbers, counted on the event loop (the only thread that answers requests) and
    turned into Prometheus families when scraped: a `Counter`/`Histogram` child takes a lock
    and validates on every update, a real share of the cheapest requests' cost.
    """

    def __init__(self) -> None:
        self.answered: dict[tuple[str, str, str], int] = {}
        # route -> (count per bucket, the last one past the largest bound; sum of seconds)
        self.latency: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, method: str, route: str, status: str, seconds: float) -> None:
        key = (method, route, status)
        self.answered[key] = self.answered.get(key, 0) + 1
        series = self.latency.get(route)
        if series is None:
            series = self.latency[route] = ([0] * (len(_LATENCY_BUCKETS) + 1), [0.0])
        series[0][bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        series[1][0] += seconds

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        answered = CounterMetricFamily(
            "jobtrail_http_requests",
            "HTTP requests answered.",
            labels=("method", "route", "status"),
        )
        for key, count in self.answered.items():
            answered.add_metric(key, count)
        yield answered
        latency = HistogramMetricFamily(
            "jobtrail_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            labels=("route",),
        )
        for route, (counts, total) in self.latency.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*_LATENCY_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric((route,), buckets, total[0])
        yield latency


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


# Any other method is counted as OTHER: a client must not mint label values at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template, not its raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.http = metrics.http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = getattr(scope.get("route"), "path", "unmatched")
            self.http.observe(method, route, str(status), time.perf_counter() - started)
