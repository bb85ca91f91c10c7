"""The launchers against real servers, through the plugin's fixtures."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pearls_localinfra.kafka import KafkaCluster
from pearls_localinfra.pgserver import PostgresServer

pytestmark = pytest.mark.integration


async def create_topic(servers: str, replicas: int, configs: dict[str, str] | None = None) -> str:
    topic = f"launcher-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=1,
                    replication_factor=replicas,
                    topic_configs=configs or {},
                )
            ]
        )
    finally:
        await admin.close()
    return topic


async def produce(servers: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"key")
    finally:
        await producer.stop()


async def consume(servers: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"group-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return [(await asyncio.wait_for(consumer.getone(), 30)).value for _ in range(count)]
    finally:
        await consumer.stop()


async def test_kafka_round_trip(kafka_bootstrap_servers: str) -> None:
    topic = await create_topic(kafka_bootstrap_servers, replicas=1)
    await produce(kafka_bootstrap_servers, topic, [b"pearl"])
    assert await consume(kafka_bootstrap_servers, topic, 1) == [b"pearl"]


async def test_postgres_fresh_databases(postgres_server: PostgresServer) -> None:
    first = await postgres_server.new_database_async("launcher")
    second = postgres_server.new_database("launcher")  # the blocking variant, inside a loop
    assert first != second
    conn = await asyncpg.connect(first)
    try:
        await conn.execute("CREATE TABLE pearls (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO pearls VALUES (1)")
        assert await conn.fetchval("SELECT count(*) FROM pearls") == 1
        assert (await conn.fetchval("SELECT current_database()")).startswith("launcher_")
    finally:
        await conn.close()
    conn = await asyncpg.connect(second)
    try:  # databases are isolated from each other
        assert await conn.fetchval("SELECT to_regclass('pearls')") is None
    finally:
        await conn.close()


@pytest.mark.cluster
async def test_three_node_cluster_survives_one_node(kafka_cluster3: KafkaCluster) -> None:
    servers = kafka_cluster3.bootstrap_servers
    topic = await create_topic(servers, replicas=3, configs={"min.insync.replicas": "2"})
    await produce(servers, topic, [b"one"])
    # acks=all with min.insync.replicas=2 still succeeds with one of three nodes down.
    kafka_cluster3.stop_node(3, kill=True)
    try:
        await produce(servers, topic, [b"two"])
    finally:
        kafka_cluster3.start_node(3)
    assert await consume(servers, topic, 2) == [b"one", b"two"]
