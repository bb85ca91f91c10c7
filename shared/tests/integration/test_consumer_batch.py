"""The consumer's batch mode keeps the per-record guarantees, against real Kafka and PostgreSQL.

Many records per database transaction, yet every event takes effect once; a
poison event in a batch is dead-lettered while the others take effect once; a
redelivered batch changes nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pearls_shared.consumer import EventConsumer
from pearls_shared.db import connect, create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_broker
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import ensure_topics

pytestmark = pytest.mark.integration

EVENT_TYPE = "pearls.application.submitted"


def envelopes(n: int) -> list[Envelope]:
    event = sample(EVENT_TYPE)
    first = envelope_for(event, correlation_id="batch")
    # Spread over the partitions by key, several events per key.
    return [
        dataclasses.replace(first, id=str(uuid.uuid4()), subject=f"app-{i % 7}") for i in range(n)
    ]


async def topic(kafka_settings: KafkaSettings) -> str:
    name = f"pearls.batchtest.{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(
        kafka_settings, [name, name + kafka_settings.dead_letter_suffix], partitions=3
    )
    return name


async def publish(kafka_settings: KafkaSettings, topic: str, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for e in events:
            await producer.send(topic, value=e.value(), key=e.subject.encode(), headers=e.headers())
        await producer.flush()
    finally:
        await producer.stop()


@asynccontextmanager
async def consuming(
    kafka_settings: KafkaSettings,
    dsn: str,
    topic: str,
    *,
    name: str,
    poison: set[str] | None = None,
    committed: list[str] | None = None,
) -> AsyncIterator[None]:
    """A batch-mode consumer whose handler writes one effect row per event."""

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", envelope.id)
        if poison and envelope.id in poison:
            raise RuntimeError("poison")

    async def after_commit(envelope: Envelope) -> None:
        if committed is not None:
            committed.append(envelope.id)

    pool = await create_pool(PostgresSettings(database_url=dsn))
    broker = new_broker(kafka_settings, client_id=name)
    consumer = EventConsumer(
        name=name,
        pool=pool,
        broker=broker,
        kafka=kafka_settings,
        handlers={EVENT_TYPE: handler},
        delivery=DeliverySettings(
            consumer_max_attempts=2, consumer_backoff_initial_s=0.01, consumer_backoff_max_s=0.05
        ),
        after_commit=after_commit,
    )
    consumer.subscribe([topic], batch_size=25, batch_timeout_ms=50)
    await consumer.start()
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()
        await consumer.stop()
        await pool.close()


async def effects(dsn: str) -> collections.Counter[str]:
    conn = await connect(dsn)
    try:
        return collections.Counter(r["event_id"] for r in await conn.fetch("SELECT * FROM effects"))
    finally:
        await conn.close()


@pytest.fixture
async def effects_db(service_db: str) -> str:
    conn = await connect(service_db)
    try:
        await conn.execute("CREATE TABLE effects (event_id text NOT NULL)")  # no key: see twice
    finally:
        await conn.close()
    return service_db


async def test_every_event_takes_effect_once_and_a_redelivered_batch_changes_nothing(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(120)
    await publish(kafka_settings, name, events)
    committed: list[str] = []
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(kafka_settings, effects_db, name, name=group, committed=committed):

        async def all_applied() -> bool:
            return sum((await effects(effects_db)).values()) >= len(events)

        await wait_for(all_applied, what="every event to take effect")
        applied = await effects(effects_db)
        assert applied == {e.id: 1 for e in events}

        # The same events again (a producer's retry, a replay): the inbox absorbs them.
        await publish(kafka_settings, name, events[:60])

        async def redelivered_seen() -> bool:
            return len(committed) >= len(events) + 60

        await wait_for(redelivered_seen, what="the redelivered events to be consumed")
    assert await effects(effects_db) == applied


async def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_applied_once(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(60)
    poison = {events[10].id, events[41].id}
    await publish(kafka_settings, name, events)
    committed: list[str] = []
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(
        kafka_settings, effects_db, name, name=group, poison=poison, committed=committed
    ):

        async def others_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events} - poison

        await wait_for(others_applied, what="the events around the poison to take effect")

        async def dead_lettered() -> set[str]:
            records = await read_topic(
                kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
            )
            return {dict(r.headers)["ce_id"].decode() for r in records} & poison

        assert await wait_for(dead_lettered, what="the poison events in the DLQ") == poison
        letters = await read_topic(
            kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
        )
        assert {dict(r.headers)["pearls_dlq_reason"] for r in letters} == {b"handler_failed"}
    applied = await effects(effects_db)
    # The poison handler's own row was rolled back with its transaction, every time.
    assert applied == {e.id: 1 for e in events if e.id not in poison}


async def test_an_undecodable_record_in_a_batch_is_dead_lettered_and_the_rest_applied_once(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(40)
    await publish(kafka_settings, name, events[:20])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:  # no CloudEvent headers, not even JSON
        await producer.send_and_wait(name, value=b"\xff not an event", key=b"app-3")
    finally:
        await producer.stop()
    await publish(kafka_settings, name, events[20:])
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(kafka_settings, effects_db, name, name=group):

        async def all_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events}

        await wait_for(all_applied, what="the events around the undecodable record")

        async def dead_letters() -> list[Any]:
            return await read_topic(
                kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
            )

        [letter] = await wait_for(dead_letters, what="the undecodable record in the DLQ")
        assert dict(letter.headers)["pearls_dlq_reason"] == b"undecodable"
    assert await effects(effects_db) == {e.id: 1 for e in events}
