"""The service runtime: start-up order, readiness and the consumers' batch setting,
against real Kafka and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for
from pearls_shared.runtime import Subscription, runtime_for, service_runtime
from pearls_shared.settings import (
    DeliverySettings,
    KafkaSettings,
    PostgresSettings,
    ServiceSettings,
)
from pearls_shared.testing import wait_for
from pearls_shared.topics import ensure_topics

pytestmark = pytest.mark.integration


async def test_ready_while_database_and_relay_run(
    postgres_server: Any, kafka_settings: KafkaSettings
) -> None:
    dsn = postgres_server.new_database("rt")
    async with service_runtime(
        service="runtime-test",
        db=PostgresSettings(database_url=dsn),
        kafka=kafka_settings,
        delivery=DeliverySettings(),
        migrations_dir=None,
    ) as runtime:
        assert runtime.relay is not None
        await wait_for(lambda: _active(runtime), what="the relay to become active")
        assert await runtime.ready()
        assert runtime.relay_task is not None
        runtime.relay_task.cancel()  # a dead relay means nothing leaves the outbox
        await wait_for(lambda: _not_ready(runtime), what="readiness to drop")


async def _active(runtime: Any) -> bool:
    return bool(runtime.relay.active.is_set())


async def _not_ready(runtime: Any) -> bool:
    return not await runtime.ready()


EVENT_TYPE = "pearls.application.submitted"


@pytest.mark.parametrize("batch_size", [50, 1])
async def test_the_batch_setting_reaches_the_consumers(
    service_db: str, kafka_settings: KafkaSettings, batch_size: int
) -> None:
    """``consumer_batch_size`` from a service's settings: a burst is handled many events per
    transaction (50), or one per transaction (1: the per-record path); each effect once."""
    conn = await connect(service_db)
    try:
        await conn.execute("CREATE TABLE effects (event_id text NOT NULL, tx bigint NOT NULL)")
    finally:
        await conn.close()
    topic = f"pearls.runtimebatch.{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(
        kafka_settings, [topic, topic + kafka_settings.dead_letter_suffix], partitions=3
    )
    first = envelope_for(sample(EVENT_TYPE), correlation_id="burst")
    burst = [
        dataclasses.replace(first, id=str(uuid.uuid4()), subject=f"app-{i % 7}") for i in range(150)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for e in burst:  # all there before the consumer starts: a burst
            await producer.send(topic, value=e.value(), key=e.subject.encode(), headers=e.headers())
        await producer.flush()
    finally:
        await producer.stop()

    async def handler(conn: Any, envelope: Any, data: Any) -> None:
        await conn.execute(
            "INSERT INTO effects (event_id, tx) VALUES ($1, txid_current())", envelope.id
        )

    settings = ServiceSettings(database_url=service_db, consumer_batch_size=batch_size)
    subscription = Subscription(f"rt-batch-{uuid.uuid4().hex[:8]}", (topic,), {EVENT_TYPE: handler})
    async with runtime_for(
        "runtime-batch", settings, kafka=kafka_settings, subscriptions=(subscription,)
    ) as runtime:

        async def all_applied() -> list[Any] | None:
            async with runtime.pool.acquire() as conn:
                rows = await conn.fetch("SELECT event_id, tx FROM effects")
            return rows if len(rows) >= len(burst) else None

        rows = await wait_for(all_applied, within=60, what="every event to take effect")
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in burst)  # each once
    transactions = {r["tx"] for r in rows}
    if batch_size == 1:
        assert len(transactions) == len(burst)
    else:
        assert len(transactions) < len(burst) / 2  # many events per transaction
