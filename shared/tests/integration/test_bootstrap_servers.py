"""``KAFKA_BOOTSTRAP_SERVERS`` with several brokers reaches every client as several brokers."""

from __future__ import annotations

import uuid

import pytest

from pearls_shared.kafka import bootstrap_list, check_connection, new_broker
from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import read_topic
from pearls_shared.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_list_is_split_and_trimmed() -> None:
    settings = KafkaSettings(bootstrap_servers=" a:9092, b:9093 ,c:9094,")
    assert bootstrap_list(settings) == ["a:9092", "b:9093", "c:9094"]


async def test_a_broker_that_does_not_answer_first_in_the_list_is_passed_over(
    kafka_bootstrap_servers: str,
) -> None:
    # Port 1 answers nothing; the real broker comes second. Read as one host
    # ("127.0.0.1:1,127.0.0.1" on the real port), the services could not start at all.
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:1,{kafka_bootstrap_servers}")
    await check_connection(settings, timeout_s=10)
    topic = f"pearls.test-bootstrap-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic], partitions=1)
    broker = new_broker(settings, client_id="bootstrap-list-test")
    await broker.start()
    try:
        await broker.publish(b"hello", topic=topic)
    finally:
        await broker.stop()
    [record] = await read_topic(kafka_bootstrap_servers, topic)
    assert record.value == b"hello"
