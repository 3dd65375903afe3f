"""Prometheus metrics, in a registry per app (no process-global state)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jobtrail_http_requests",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "jobtrail_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ("route",),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
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

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Any other method is counted as OTHER: a client must not mint label values at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template, not its raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each label set's counter and histogram, looked up once: `labels()` validates and
        # locks on every call, a real share of a cheap request's cost.
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

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
            route = scope.get("route")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, getattr(route, "path", "unmatched"), str(status))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    self.metrics.requests.labels(*key),
                    self.metrics.latency.labels(key[1]),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)
