"""Explicit topic creation and the outbox's transaction rule, against real servers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.outbox import OutboxMisuse, record_event
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import ensure_topics

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
    finally:
        await admin.close()


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
