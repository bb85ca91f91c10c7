"""A database outage is not the message's fault: records wait, none is dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from pearls_shared.topics import APPLICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("contract_topics")]


class Outage:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._links: set[asyncio.StreamWriter] = set()
        self.down = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.down = True
        for writer in self._links:
            writer.close()
        self._links.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


def _via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_records_wait_through_a_database_outage_and_take_effect_once(
    service_db: str, kafka_settings: KafkaSettings
) -> None:
    target = urlsplit(service_db)
    outage = Outage(target.hostname or "127.0.0.1", target.port or 5432)
    proxied = _via(service_db, await outage.start())
    conn = await connect(service_db)
    await conn.execute("CREATE TABLE effects (event_id text PRIMARY KEY)")

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1)", envelope.id)

    pool = await create_pool(PostgresSettings(database_url=proxied, pool_min_size=0))
    broker = new_broker(kafka_settings, client_id="outage-test")
    consumer = EventConsumer(
        name=f"outage-{uuid.uuid4()}",
        pool=pool,
        broker=broker,
        kafka=kafka_settings,
        handlers={"pearls.application.submitted": handler},
        delivery=DeliverySettings(
            consumer_max_attempts=2, consumer_backoff_initial_s=0.05, consumer_backoff_max_s=0.5
        ),
    )
    consumer.subscribe([APPLICATIONS])
    await consumer.start()
    await broker.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        first = envelope_for(sample("pearls.application.submitted"), correlation_id="o")

        async def handled(event_id: str) -> bool:
            return bool(await conn.fetchval("SELECT 1 FROM effects WHERE event_id = $1", event_id))

        await producer.send_and_wait(
            APPLICATIONS, value=first.value(), key=first.subject.encode(), headers=first.headers()
        )
        await wait_for(lambda: handled(first.id), within=60, what="the consumer to catch up")

        outage.cut()  # every pooled connection dies, new ones are refused
        during = envelope_for(sample("pearls.application.submitted"), correlation_id="o")
        await producer.send_and_wait(
            APPLICATIONS,
            value=during.value(),
            key=during.subject.encode(),
            headers=during.headers(),
        )
        await asyncio.sleep(3)  # far more than the retry budget of 2 quick attempts
        assert not await handled(during.id)
        outage.down = False

        await wait_for(lambda: handled(during.id), within=60, what="the record after the outage")
    finally:
        await producer.stop()
        await broker.stop()
        await consumer.stop()
        await pool.close()
        await outage.stop()
    dead = [
        r
        for r in await read_topic(kafka_settings.bootstrap_servers, APPLICATIONS + ".dlq")
        if dict(r.headers).get("ce_id") == during.id.encode()
    ]
    assert dead == [], "an outage must not dead-letter the record"
    assert await conn.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", during.id) == 1
    await conn.close()
