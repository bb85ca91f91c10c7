"""Records that can never be handled go to the dead-letter topic at once, with the reason."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pearls_shared.consumer import EventConsumer
from pearls_shared.db import create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_broker
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import KafkaSettings, PostgresSettings
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import APPLICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("contract_topics")]


async def test_unknown_type_and_invalid_data_are_dead_lettered_without_retries(
    service_db: str, kafka_settings: KafkaSettings
) -> None:
    good = envelope_for(sample("pearls.application.submitted"), correlation_id="dl")
    key = good.subject.encode()
    unknown = dataclasses.replace(good, id=str(uuid.uuid4()), type="pearls.city.moved")
    broken_data = dict(good.data)
    del broken_data["country"]
    broken_data["population"] = "many"
    invalid = dataclasses.replace(good, id=str(uuid.uuid4()), data=broken_data)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for envelope in (unknown, invalid, good):
            await producer.send_and_wait(
                APPLICATIONS, value=envelope.value(), key=key, headers=envelope.headers()
            )
    finally:
        await producer.stop()

    handled: list[str] = []

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        handled.append(envelope.id)

    pool = await create_pool(PostgresSettings(database_url=service_db))
    broker = new_broker(kafka_settings, client_id="dl-test")
    consumer = EventConsumer(
        name=f"dl-{uuid.uuid4()}",
        pool=pool,
        broker=broker,
        kafka=kafka_settings,
        handlers={"pearls.application.submitted": handler},
    )
    consumer.subscribe([APPLICATIONS])
    await consumer.start()
    await broker.start()
    try:

        async def good_handled() -> bool:
            return good.id in handled

        await wait_for(good_handled, what="the valid event behind the bad ones")
    finally:
        await broker.stop()
        await consumer.stop()
        await pool.close()

    assert unknown.id not in handled and invalid.id not in handled
    letters = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)
        for r in await read_topic(kafka_settings.bootstrap_servers, APPLICATIONS + ".dlq")
        if "ce_id" in dict(r.headers)
    }
    assert letters[unknown.id]["pearls_dlq_reason"] == b"unknown_type"
    assert b"pearls.city.moved" in letters[unknown.id]["pearls_dlq_error"]
    assert letters[invalid.id]["pearls_dlq_reason"] == b"invalid_data"
    error = letters[invalid.id]["pearls_dlq_error"].decode()
    assert "country" in error and "population" in error  # every faulty field is named
    assert letters[invalid.id]["pearls_dlq_attempts"] == b"0"
