"""Prometheus metrics, one registry per application (never the process-global one).

The foundation's metrics are created here. A feature adds its own through the same object, in
its ``add_routes`` (the registry exists before routes are added)::

    sent = app[METRICS].counter("semafore_messages_sent_total", "Envelopes accepted.", ["kind"])

Label values must be bounded (route templates, status codes, kinds) and never carry ids, phone
numbers or tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class Metrics:
    """The application's metrics and the registry they live in."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.http_requests = self.counter(
            "semafore_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
        )
        self.http_request_seconds = self.histogram(
            "semafore_http_request_duration_seconds",
            "Time from request to response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
        )
        self.writer_queue_depth = self.gauge(
            "semafore_db_writer_queue_depth", "Units of work waiting for the database writer."
        )
        self.commit_batch_units = self.histogram(
            "semafore_db_commit_batch_units",
            "Units of work committed per transaction (group commit batch size).",
            buckets=BATCH_BUCKETS,
        )
        self.commit_seconds = self.histogram(
            "semafore_db_commit_duration_seconds",
            "Time from BEGIN to COMMIT of one write batch.",
            buckets=LATENCY_BUCKETS,
        )

    # -- for features -------------------------------------------------------------------------

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, list(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        return Histogram(name, documentation, list(labels), registry=self.registry, buckets=buckets)

    # -- wiring -------------------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_request_seconds.labels(route).observe(seconds)

    def observe_commit(self, units: int, seconds: float) -> None:
        """A :meth:`semafore.storage.Database.add_commit_observer` callback."""
        self.commit_batch_units.observe(units)
        self.commit_seconds.observe(seconds)

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        self.writer_queue_depth.set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
