"""Prometheus metrics of the delivery plumbing (exposed by each service's HTTP app at
``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
HANDLER_LATENCY = Histogram(
    "pearls_consumer_handler_seconds",
    "Time one handling attempt takes (inbox insert, handler, commit), in seconds.",
    ["consumer", "event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EMAILS_SENT = Counter("pearls_emails_sent_total", "E-mails the mail server accepted.", ["template"])
EMAILS_FAILED = Counter(
    "pearls_emails_failed_total",
    "E-mails given up on (permanent refusal, or retries exhausted).",
    ["template", "permanent"],
)
EMAILS_DEFERRED = Counter(
    "pearls_emails_deferred_total", "Temporary e-mail failures that will be retried.", ["template"]
)
