"""Prometheus metrics of the delivery plumbing (exposed by each service's HTTP app)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_PUBLISHED = Counter(
    "pearls_outbox_published_total", "Outbox rows published to Kafka.", ["service", "topic"]
)
PUBLISH_FAILURES = Counter(
    "pearls_outbox_publish_failures_total", "Failed outbox publish attempts.", ["service"]
)
OUTBOX_PENDING = Gauge("pearls_outbox_pending", "Outbox rows not yet published.", ["service"])
EVENTS_HANDLED = Counter(
    "pearls_inbox_handled_total", "Events handled by a consumer.", ["consumer", "event_type"]
)
DUPLICATES_SKIPPED = Counter(
    "pearls_inbox_duplicates_total",
    "Redelivered events skipped by the inbox.",
    ["consumer"],
)
HANDLER_RETRIES = Counter(
    "pearls_consumer_retries_total", "Handler attempts that failed and were retried.", ["consumer"]
)
DEAD_LETTERED = Counter(
    "pearls_dead_lettered_total", "Messages sent to a dead-letter topic.", ["consumer", "reason"]
)
