"""Reading whole topics from the beginning, to rebuild a read model from events alone
(awards' view, ``pearls rebuild``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from pearls_shared import envelope as ce
from pearls_shared.events.registry import UnknownEventType, parse
from pearls_shared.kafka import client_options
from pearls_shared.settings import KafkaSettings

log = structlog.get_logger(__name__)


async def events(
    kafka: KafkaSettings, topics: Sequence[str], wanted: Sequence[str]
) -> AsyncIterator[tuple[ce.Envelope, Any]]:
    """Every event of ``wanted`` types in ``topics`` up to their current end, partition by
    partition. Records that do not decode are skipped (the live consumer dead-lettered them)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
    ]
    if not partitions:
        return
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        break
                    try:
                        envelope = ce.decode(list(record.headers or ()), record.value)
                        if envelope.type not in wanted:
                            continue
                        yield envelope, parse(envelope.type, envelope.data)
                    except (
                        ce.EnvelopeError,
                        UnicodeDecodeError,
                        UnknownEventType,
                        ValidationError,
                    ) as exc:
                        log.warning(
                            "replay_skipped",
                            topic=tp.topic,
                            offset=record.offset,
                            error=str(exc)[:200],
                        )
    finally:
        await consumer.stop()
