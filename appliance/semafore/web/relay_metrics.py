"""The relay's metrics, read from the services' plain counters at scrape time (services know
nothing of Prometheus; nothing on the hot path touches a metric object)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from semafore.services.messaging import MessagingServices
from semafore.web.metrics import Metrics


class _RelayCollector(Collector):
    def __init__(self, messaging: MessagingServices) -> None:
        self._m = messaging

    def collect(self) -> Iterator[Metric]:
        m = self._m
        relay, hub, push = m.relay.stats, m.hub.stats, m.push.stats
        yield GaugeMetricFamily(
            "semafore_relay_queue_depth",
            "Envelopes queued for all devices (refreshed every few seconds).",
            value=m.queue_depth,
        )
        yield GaugeMetricFamily(
            "semafore_relay_open_sockets", "Authenticated device WebSockets open.",
            value=m.hub.open_sockets,
        )
        yield _counter("semafore_relay_sends", "Sends accepted and stored.", relay.sends)
        yield _counter(
            "semafore_relay_envelopes_stored", "Envelopes stored (one per target device).",
            relay.envelopes,
        )
        yield _counter(
            "semafore_relay_duplicate_sends", "Retried sends answered from the record.",
            relay.duplicates,
        )
        refused = CounterMetricFamily(
            "semafore_relay_sends_refused", "Sends refused, by error code.", labels=["code"]
        )
        for code, count in sorted(relay.refused.items()):
            refused.add_metric([code], count)
        yield refused
        yield _counter(
            "semafore_relay_deliveries", "Envelopes handed to devices (socket or fetch).",
            hub.delivered,
        )
        yield _counter(
            "semafore_relay_redeliveries",
            "Deliveries of an envelope this process had delivered before (not acked in time).",
            hub.redelivered,
        )
        yield _counter("semafore_relay_delivery_frames", "Delivery frames sent.", hub.frames)
        yield _counter(
            "semafore_relay_outbox_overflows",
            "Slow sockets that fell back to database-driven delivery.", hub.overflows,
        )
        yield _counter("semafore_relay_acks", "Envelopes acked and deleted.", relay.acks)
        yield _counter("semafore_relay_expired", "Envelopes expired unacked.", m.expiry.expired)
        yield _counter(
            "semafore_push_scheduled", "Pushes scheduled (retries not included).", push.scheduled
        )
        yield _counter("semafore_push_attempts", "Push requests made.", push.attempts)
        yield _counter("semafore_push_delivered", "Push requests accepted (2xx).", push.delivered)
        yield _counter("semafore_push_failed", "Pushes given up.", push.failed)
        yield _counter(
            "semafore_push_coalesced", "Notifications absorbed by a pending push.", push.coalesced
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def register_relay_metrics(metrics: Metrics, messaging: MessagingServices) -> None:
    metrics.registry.register(_RelayCollector(messaging))
