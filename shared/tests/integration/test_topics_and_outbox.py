"""Explicit topic creation and the outbox's transaction rule, against real servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.outbox import OutboxMisuse, record_event
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import wait_for
from pearls_shared.topics import dead_letter_topic, ensure_topics

pytestmark = pytest.mark.integration


async def test_topics_are_created_with_partitions_and_min_insync(
    kafka_bootstrap_servers: str,
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap_servers, topic_partitions=4, topic_min_insync_replicas=1
    )
    name = f"pearls.test.{uuid.uuid4().hex}"
    await ensure_topics(settings, [name])
    await ensure_topics(settings, [name])  # a second call changes nothing
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        [description] = await admin.describe_topics([name])
        assert len(description["partitions"]) == 4
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        entries = {entry[0]: entry[1] for entry in configs.resources[0][4]}
        assert entries["min.insync.replicas"] == "1"
        assert entries["cleanup.policy"] == "delete"
        assert entries["retention.ms"] == str(settings.topic_retention_ms) == "63072000000"
    finally:
        await admin.close()


async def test_event_and_dead_letter_topics_get_their_own_retention(
    kafka_bootstrap_servers: str,
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap_servers,
        topic_retention_ms=-1,
        dead_letter_retention_ms=86_400_000,
    )
    name = f"pearls.test.{uuid.uuid4().hex}"
    dead_letters = dead_letter_topic(name, settings)
    await ensure_topics(settings, [name, dead_letters])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        [configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in (name, dead_letters)]
        )
        entries = {r[3]: {e[0]: e[1] for e in r[4]} for r in configs.resources}
    finally:
        await admin.close()
    assert entries[name]["retention.ms"] == "-1"
    assert entries[dead_letters]["retention.ms"] == "86400000"


def test_a_retention_of_zero_or_minutes_is_refused() -> None:
    for value in (0, 1000, -2):
        with pytest.raises(ValueError, match=r"forever|greater than or equal"):
            KafkaSettings(topic_retention_ms=value)
    assert KafkaSettings(dead_letter_retention_ms=-1).dead_letter_retention_ms == -1


async def test_record_event_refuses_to_run_outside_a_transaction(service_db: str) -> None:
    conn = await connect(service_db)
    try:
        with pytest.raises(OutboxMisuse):
            await record_event(conn, sample("pearls.call.opened"), correlation_id="c")
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()


async def test_a_rolled_back_change_leaves_no_event(service_db: str) -> None:
    conn: Any = await connect(service_db)
    try:
        with pytest.raises(RuntimeError, match="business rule"):
            async with conn.transaction():
                await record_event(conn, sample("pearls.call.opened"), correlation_id="c")
                raise RuntimeError("business rule broken after the event was recorded")
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        async with conn.transaction():
            envelope = await record_event(conn, sample("pearls.call.opened"), correlation_id="c")
        row = await conn.fetchrow("SELECT event_id::text, topic, message_key FROM outbox")
        assert row["event_id"] == envelope.id
        assert row["topic"] == "pearls.applications.v1"
        assert row["message_key"] == envelope.subject.encode()
    finally:
        await conn.close()


async def test_relay_purges_old_sent_events_and_old_inbox_entries(
    service_db: str, kafka_settings: KafkaSettings
) -> None:
    conn: Any = await connect(service_db)
    try:
        async with conn.transaction():
            old = await record_event(conn, sample("pearls.call.opened"), correlation_id="p")
            fresh = await record_event(conn, sample("pearls.call.closed"), correlation_id="p")
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE event_id = $1", old.id
        )
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE event_id = $1", fresh.id)
        await conn.execute(
            "INSERT INTO inbox (consumer, event_id, event_type, handled_at) VALUES"
            " ('c', 'old', 't', now() - interval '2 hours'), ('c', 'fresh', 't', now())"
        )
        stop = asyncio.Event()
        relay = OutboxRelay(
            service="purge",
            dsn=service_db,
            kafka=kafka_settings,
            delivery=DeliverySettings(relay_retention_s=3600, inbox_retention_s=3600),
        )
        task = asyncio.create_task(relay.run(stop))
        try:

            async def purged() -> bool:
                return await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = 'old'") == 0

            await wait_for(purged, what="the purge")
        finally:
            stop.set()
            await task
        remaining = await conn.fetch("SELECT event_id::text FROM outbox")
        assert [r["event_id"] for r in remaining] == [fresh.id]
        inbox = await conn.fetch("SELECT event_id FROM inbox")
        assert [r["event_id"] for r in inbox] == ["fresh"]
    finally:
        await conn.close()


async def test_a_stopping_relay_publishes_what_is_committed_before_it_closes(
    service_db: str, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> None:
    """A clean stop (SIGTERM) drains the outbox: rows committed when the stop comes go
    out before the producer closes, several batches of them, and none is left pending."""
    conn: Any = await connect(service_db)
    stop = asyncio.Event()
    relay = OutboxRelay(
        service="drain",
        dsn=service_db,
        kafka=kafka_settings,
        delivery=DeliverySettings(relay_batch_size=20, relay_poll_interval_s=30),
    )
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.wait_for(relay.active.wait(), 30)
        async with conn.transaction():
            for _ in range(90):
                await record_event(conn, sample("pearls.call.opened"), correlation_id="drain")
        stop.set()  # at once: the relay learns of the rows and of the stop together
        await asyncio.wait_for(task, 60)
        pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        assert pending == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 90
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()
