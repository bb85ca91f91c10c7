"""Helpers for tests that talk to a real Kafka broker: polling and reading topics.

Shipped with the library (like faststream's own testing module) so every
service's tests use the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@contextlib.contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Every span ended inside the block, kept in memory (the process's provider is the
    SDK's; a provider another test installed first is kept and given this exporter)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        exporter.shutdown()  # later spans are no longer kept


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently in ``topic``, partition by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    assert partitions, f"topic {topic} does not exist"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> None:
    """Commit a consumer group's offsets at the topics' current end, so a service started
    with that group reads only what is published next (tests share one broker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(dict(await consumer.end_offsets(partitions)))
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class SeenEvent:
    """A CloudEvent as a test reads it back from a topic (attributes and JSON data)."""

    type: str
    key: str
    subject: str
    source: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]


def seen_event(record: ConsumerRecord[bytes, bytes]) -> SeenEvent | None:
    """The event in ``record``, or None for anything else (topics are shared with tests
    that publish garbage on purpose)."""
    headers = {k: (v or b"").decode(errors="replace") for k, v in record.headers or ()}
    if "ce_type" not in headers or record.key is None or record.value is None:
        return None
    try:
        data = json.loads(record.value)
    except ValueError:
        return None
    return SeenEvent(
        type=headers["ce_type"],
        key=record.key.decode(errors="replace"),
        subject=headers.get("ce_subject", ""),
        source=headers.get("ce_source", ""),
        correlation_id=headers.get("ce_correlationid", ""),
        causation_id=headers.get("ce_causationid", ""),
        data=data if isinstance(data, dict) else {},
    )
