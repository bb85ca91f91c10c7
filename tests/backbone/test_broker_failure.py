"""The relay on a 3-node cluster: a broker killed mid-stream loses nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for, write_envelope
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import APPLICATIONS, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


async def test_relay_keeps_every_event_when_a_broker_dies(
    kafka_cluster3: Any, service_db: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_cluster3.bootstrap_servers,
        topic_partitions=3,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
    )
    await ensure_topics(settings, [APPLICATIONS])
    conn = await connect(service_db)
    stop = asyncio.Event()
    relay = OutboxRelay(
        service="applications",
        dsn=service_db,
        kafka=settings,
        delivery=DeliverySettings(relay_batch_size=20, relay_poll_interval_s=0.1),
    )
    task = asyncio.create_task(relay.run(stop))
    ids: list[str] = []

    async def write(n: int) -> None:
        for _ in range(n):
            envelope = envelope_for(sample("pearls.application.submitted"), correlation_id="f")
            async with conn.transaction():
                await write_envelope(conn, APPLICATIONS, envelope)
            ids.append(envelope.id)

    async def all_sent() -> bool:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

    try:
        await write(100)
        await wait_for(all_sent, what="the first half to be published")
        await asyncio.to_thread(kafka_cluster3.stop_node, 2, kill=True)
        try:
            await write(100)  # acks=all still succeeds with 2 of 3 replicas in sync
            await wait_for(all_sent, within=90, what="the second half, with a broker down")
        finally:
            await asyncio.to_thread(kafka_cluster3.start_node, 2)
    finally:
        stop.set()
        await task
        await conn.close()

    on_topic = Counter(
        dict(r.headers)["ce_id"].decode()
        for r in await read_topic(settings.bootstrap_servers, APPLICATIONS)
    )
    assert set(ids) <= set(on_topic), "every event reached the cluster"
