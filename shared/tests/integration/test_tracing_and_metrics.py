"""Trace context on consumed records and the delivery metrics, against real PostgreSQL
(and Kafka for dead letters and the relay).

A record without ``traceparent``, or with a malformed one, starts a new trace and is
handled like any other (never dead-lettered for it); one with a valid header continues
its trace, and what the handler writes to the outbox carries that trace on. Each
metric is read from ``/metrics`` after causing what it counts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from pearls_shared import envelope as ce
from pearls_shared.consumer import EventConsumer
from pearls_shared.db import connect, create_pool
from pearls_shared.events.samples import sample
from pearls_shared.http import operations_router
from pearls_shared.kafka import new_broker, new_producer
from pearls_shared.outbox import envelope_for, record_event
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings
from pearls_shared.tracing import extract_headers, inject_headers, tracer

pytestmark = pytest.mark.integration

SUBMITTED = "pearls.application.submitted"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def _metric(name: str, **labels: str) -> float:
    """A sample's value as ``/metrics`` shows it (0 when absent)."""

    async def ready() -> bool:
        return True

    app = FastAPI()
    app.include_router(operations_router(ready))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ops"
    ) as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def _record(headers: list[tuple[str, bytes]], offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    envelope = envelope_for(sample(SUBMITTED), correlation_id=f"c-{uuid.uuid4()}")
    return ConsumerRecord(
        topic="pearls.applications.v1",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=envelope.subject.encode(),
        value=envelope.value(),
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=[*envelope.headers(), *headers],
    )


class _Handler:
    """Records the trace it ran in and writes an event to the outbox; fails ``fail``
    times first."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.trace_ids: list[int] = []

    async def __call__(
        self, conn: asyncpg.Connection[Any], envelope: ce.Envelope, data: Any
    ) -> None:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("not this time")
        await record_event(
            conn, sample("pearls.application.accepted"), correlation_id=envelope.correlation_id
        )


def _consumer(
    dsn_pool: asyncpg.Pool[Any], kafka: KafkaSettings, handler: _Handler, attempts: int = 3
) -> EventConsumer:
    return EventConsumer(
        name=f"trace-test-{uuid.uuid4()}",
        pool=dsn_pool,
        broker=new_broker(kafka, client_id="trace-test"),
        kafka=kafka,
        handlers={SUBMITTED: handler},
        delivery=DeliverySettings(
            consumer_max_attempts=attempts, consumer_backoff_initial_s=0, consumer_backoff_max_s=0
        ),
        service="trace-test",
    )


def _consumer_span(spans: InMemorySpanExporter, consumer: EventConsumer) -> ReadableSpan:
    [span] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CONSUMER
        and (s.attributes or {}).get("messaging.consumer.group.name") == consumer.name
    ]
    return span


async def _outbox_trace_ids(dsn: str) -> list[int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT headers::text AS h FROM outbox ORDER BY id")
    finally:
        await conn.close()
    ids = []
    for row in rows:
        headers = [(n, v.encode()) for n, v in json.loads(row["h"])]
        ids.append(trace.get_current_span(extract_headers(headers)).get_span_context().trace_id)
    return ids


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", b"00-not-a-trace-id-at-all-01")],
        [("traceparent", b"\xff\xfe"), ("tracestate", b"=,=")],
        [("traceparent", b"00-00000000000000000000000000000000-0000000000000000-01")],
    ],
    ids=["none", "malformed", "not-utf8", "all-zero"],
)
async def test_a_record_without_a_valid_traceparent_starts_a_new_trace_and_is_handled(
    headers: list[tuple[str, bytes]],
    service_db: str,
    kafka_settings: KafkaSettings,
    spans: InMemorySpanExporter,
) -> None:
    pool = await create_pool(PostgresSettings(database_url=service_db))
    try:
        handler = _Handler()
        consumer = _consumer(pool, kafka_settings, handler)
        # Not started: a dead letter would raise (no dead-letter producer).
        await consumer._process(_record(headers))
    finally:
        await pool.close()
    span = _consumer_span(spans, consumer)
    assert span.parent is None  # a new trace
    assert span.context is not None and span.context.trace_id != 0
    assert handler.trace_ids == [span.context.trace_id]
    # What the handler wrote continues that trace.
    assert await _outbox_trace_ids(service_db) == [span.context.trace_id]


async def test_a_record_with_a_traceparent_continues_its_trace(
    service_db: str, kafka_settings: KafkaSettings, spans: InMemorySpanExporter
) -> None:
    headers: list[tuple[str, bytes]] = []
    with tracer("upstream").start_as_current_span("upstream publish") as upstream:
        inject_headers(headers)
    pool = await create_pool(PostgresSettings(database_url=service_db))
    try:
        handler = _Handler()
        consumer = _consumer(pool, kafka_settings, handler)
        await consumer._process(_record(headers))
    finally:
        await pool.close()
    span = _consumer_span(spans, consumer)
    upstream_ctx = upstream.get_span_context()
    assert span.parent is not None and span.parent.span_id == upstream_ctx.span_id
    assert span.context is not None and span.context.trace_id == upstream_ctx.trace_id
    assert await _outbox_trace_ids(service_db) == [upstream_ctx.trace_id]


async def test_consumer_metrics_move(
    service_db: str, kafka_settings: KafkaSettings, contract_topics: Any
) -> None:
    pool = await create_pool(PostgresSettings(database_url=service_db))
    try:
        # Handled after one retry, then the same record again: a duplicate.
        consumer = _consumer(pool, kafka_settings, _Handler(fail=1))
        labels = {"consumer": consumer.name}
        record = _record([])
        await consumer._process(record)
        await consumer._process(record)
        assert await _metric("pearls_inbox_handled_total", **labels, event_type=SUBMITTED) == 1
        assert await _metric("pearls_consumer_retries_total", **labels) == 1
        assert await _metric("pearls_inbox_duplicates_total", **labels) == 1
        latency = {**labels, "event_type": SUBMITTED}
        # Two attempts of the first delivery, one of the duplicate.
        assert await _metric("pearls_consumer_handler_seconds_count", **latency) == 3
        assert await _metric("pearls_consumer_handler_seconds_sum", **latency) > 0
        # A handler that always fails: dead-lettered after its attempts.
        failing = _consumer(pool, kafka_settings, _Handler(fail=99), attempts=2)
        await failing.start()
        try:
            await failing._process(_record([]))
        finally:
            await failing.stop()
        assert (
            await _metric(
                "pearls_dead_lettered_total", consumer=failing.name, reason="handler_failed"
            )
            == 1
        )
    finally:
        await pool.close()


async def test_outbox_backlog_gauge_follows_the_pending_rows(
    service_db: str, kafka_settings: KafkaSettings, contract_topics: Any
) -> None:
    service = f"backlog-{uuid.uuid4().hex[:8]}"
    conn = await connect(service_db)
    producer = new_producer(kafka_settings, client_id="backlog-test")
    await producer.start()
    try:
        async with conn.transaction():
            for _ in range(3):
                await record_event(conn, sample(SUBMITTED), correlation_id="backlog")
        relay = OutboxRelay(
            service=service,
            dsn=service_db,
            kafka=kafka_settings,
            delivery=DeliverySettings(relay_batch_size=2),
        )
        # A full batch of 2 out of 3 pending: the gauge shows all 3.
        await relay._publish_batch(conn, producer)
        assert await _metric("pearls_outbox_pending", service=service) == 3
        await relay._publish_batch(conn, producer)
        assert await _metric("pearls_outbox_pending", service=service) == 1
        await relay._publish_batch(conn, producer)
        assert await _metric("pearls_outbox_pending", service=service) == 0
        assert await _metric("pearls_outbox_published_total", service=service) == 3
    finally:
        await producer.stop()
        await conn.close()
