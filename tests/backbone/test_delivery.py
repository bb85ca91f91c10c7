"""The backbone's delivery guarantees, against a real Kafka broker and PostgreSQL.

Outbox → relay → Kafka → inbox consumer, with real processes killed at the two
crash windows that matter, a poison message, and per-key order under relay
fail-over on a 3-partition topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage as CloudEventsKafkaMessage
from cloudevents.core.bindings.kafka import from_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from pearls_shared.consumer import EventConsumer
from pearls_shared.db import connect, create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.events.base import EventData
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_broker
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.outbox import record_event
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import KafkaSettings, PostgresSettings
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import APPLICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("contract_topics")]

SUBMITTED = "pearls.application.submitted"


def submitted(key: str | None = None) -> EventData:
    event = sample(SUBMITTED)
    return event.model_copy(update={event.key_field: uuid.UUID(key) if key else uuid.uuid4()})


async def write_events(dsn: str, events: list[EventData], correlation_id: str) -> list[Envelope]:
    """Each event in its own transaction, as a service's command handlers do."""
    conn = await connect(dsn)
    try:
        written = []
        for event in events:
            async with conn.transaction():
                written.append(await record_event(conn, event, correlation_id=correlation_id))
        return written
    finally:
        await conn.close()


async def effect_counts(dsn: str, event_ids: list[str]) -> Counter[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM effects WHERE event_id = ANY($1::text[])", event_ids
        )
        return Counter(r["event_id"] for r in rows)
    except asyncpg.UndefinedTableError:  # the consumer process has not started yet
        return Counter()
    finally:
        await conn.close()


async def unsent(dsn: str) -> int:
    conn = await connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


def consumer_args(dsn: str, bootstrap: str, group: str, *extra: str) -> list[str]:
    return [
        "consumer",
        "--dsn",
        dsn,
        "--bootstrap",
        bootstrap,
        "--group",
        group,
        "--topics",
        APPLICATIONS,
        "--types",
        SUBMITTED,
        *extra,
    ]


async def test_event_crosses_services_with_cloudevents_attributes(
    service_db: str, postgres_server: Any, kafka_settings: KafkaSettings
) -> None:
    consumer_dsn = postgres_server.new_database("consumer")
    event = submitted()
    [written] = await write_events(service_db, [event], correlation_id="req-42")

    stop = asyncio.Event()
    relay = OutboxRelay(service="applications", dsn=service_db, kafka=kafka_settings)
    relay_task = asyncio.create_task(relay.run(stop))

    received: list[tuple[Envelope, Any]] = []
    conn = await connect(consumer_dsn)
    try:
        await migrate(conn, shared_migrations())
    finally:
        await conn.close()
    pool = await create_pool(PostgresSettings(database_url=consumer_dsn))

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        if envelope.id == written.id:
            received.append((envelope, data))

    broker = new_broker(kafka_settings, client_id="test-crossing")
    consumer = EventConsumer(
        name=f"crossing-{uuid.uuid4()}",
        pool=pool,
        broker=broker,
        kafka=kafka_settings,
        handlers={SUBMITTED: handler},
    )
    consumer.subscribe([APPLICATIONS])
    await consumer.start()
    await broker.start()
    try:
        await wait_for(lambda: _truthy(received), what="the event at the consumer")
    finally:
        await broker.stop()
        await consumer.stop()
        await pool.close()
        stop.set()
        await relay_task

    envelope, data = received[0]
    assert envelope.type == SUBMITTED
    assert envelope.source == "/pearls/applications"
    assert envelope.subject == event.key()
    assert envelope.correlation_id == "req-42"
    assert envelope.time == written.time
    assert envelope.dataschema == event.dataschema()
    assert data == event  # the consumer got the producer's model, parsed

    # The same record, decoded by the official CloudEvents SDK.
    records = [
        r
        for r in await read_topic(kafka_settings.bootstrap_servers, APPLICATIONS)
        if dict(r.headers).get("ce_id") == written.id.encode()
    ]
    assert len(records) == 1
    record = records[0]
    assert record.key == event.key().encode()
    cloud_event = from_binary(
        CloudEventsKafkaMessage(headers=dict(record.headers), key=record.key, value=record.value),
        JSONFormat(),
        CloudEvent,
    )
    assert cloud_event.get_id() == written.id
    assert cloud_event.get_type() == SUBMITTED
    assert cloud_event.get_source() == "/pearls/applications"
    assert cloud_event.get_subject() == event.key()
    assert cloud_event.get_specversion() == "1.0"
    assert cloud_event.get_time() == written.time
    assert cloud_event.get_dataschema() == event.dataschema()
    assert cloud_event.get_datacontenttype() == "application/json"
    assert cloud_event.get_extension("correlationid") == "req-42"
    assert cloud_event.get_extension("partitionkey") == event.key()
    assert cloud_event.get_data() == event.to_data()


async def _truthy(value: Any) -> Any:
    return value


async def test_relay_killed_between_publish_and_mark_effect_happens_once(
    service_db: str, postgres_server: Any, kafka_settings: KafkaSettings, processes: Any
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    consumer_dsn = postgres_server.new_database("consumer")
    written = await write_events(service_db, [submitted() for _ in range(5)], "req-relay-kill")
    ids = [e.id for e in written]

    consumer = processes(*consumer_args(consumer_dsn, bootstrap, f"g-{uuid.uuid4()}"), name="c")
    crashing = processes(
        "relay",
        "--dsn",
        service_db,
        "--bootstrap",
        bootstrap,
        "--crash-after-publish",
        name="relay-crash",
    )
    assert await crashing.wait_exit() == -9, crashing.output()
    assert "crashing after publishing 5 rows" in crashing.output()
    assert await unsent(service_db) == 5, "the killed relay must not have marked anything"

    processes("relay", "--dsn", service_db, "--bootstrap", bootstrap, name="relay")
    await wait_for(lambda: _zero(unsent(service_db)), what="the second relay to mark rows sent")

    async def all_effects() -> bool:
        return set((await effect_counts(consumer_dsn, ids)).keys()) == set(ids)

    await wait_for(all_effects, what="every effect")
    await wait_for(
        lambda: _at_least(consumer, "duplicate_skipped", 5), what="the duplicates to be skipped"
    )
    on_topic = Counter(
        dict(r.headers).get("ce_id", b"").decode()
        for r in await read_topic(bootstrap, APPLICATIONS)
    )
    assert all(on_topic[i] == 2 for i in ids), "each event was published twice"
    assert await effect_counts(consumer_dsn, ids) == Counter({i: 1 for i in ids})


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def _first_active(relays: list[Any]) -> Any:
    return next((r for r in relays if "relay_active" in r.output()), None)


async def _zero(value: Any) -> bool:
    return await value == 0


async def _at_least(process: Any, text: str, count: int) -> bool:
    return process.output().count(text) >= count


async def test_consumer_killed_between_db_commit_and_offset_commit(
    service_db: str, postgres_server: Any, kafka_settings: KafkaSettings, processes: Any
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    consumer_dsn = postgres_server.new_database("consumer")
    group = f"g-{uuid.uuid4()}"
    [written] = await write_events(service_db, [submitted()], "req-consumer-kill")
    stop = asyncio.Event()
    relay_task = asyncio.create_task(
        OutboxRelay(service="applications", dsn=service_db, kafka=kafka_settings).run(stop)
    )
    try:
        await wait_for(lambda: _zero(unsent(service_db)), what="the relay")
    finally:
        stop.set()
        await relay_task

    # A new group starts from the beginning of the topic: the kill lands on the
    # first event it handles, whichever test wrote it; the log names it.
    crashing = processes(
        *consumer_args(consumer_dsn, bootstrap, group, "--crash-after-commit"), name="crashing"
    )
    assert await crashing.wait_exit() == -9, crashing.output()
    crashed_on = crashing.output().split("crashing after committing ")[1].split()[0]
    assert (await effect_counts(consumer_dsn, [crashed_on]))[crashed_on] == 1

    restarted = processes(*consumer_args(consumer_dsn, bootstrap, group), name="restarted")

    async def redelivery_absorbed() -> bool:
        return any(
            line.get("event") == "duplicate_skipped" and line.get("event_id") == crashed_on
            for line in _json_lines(restarted.output())
        )

    await wait_for(redelivery_absorbed, what="the redelivery of the crashed event to be absorbed")

    async def handled() -> bool:
        return (await effect_counts(consumer_dsn, [written.id]))[written.id] == 1

    await wait_for(handled, what="our event's effect")
    assert (await effect_counts(consumer_dsn, [crashed_on]))[crashed_on] == 1


async def test_poison_message_is_dead_lettered_and_the_partition_moves_on(
    postgres_server: Any, service_db: str, kafka_settings: KafkaSettings, processes: Any
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    consumer_dsn = postgres_server.new_database("consumer")
    key = str(uuid.uuid4())  # one key: one partition, poison first in line
    poison, *behind = await write_events(
        service_db, [submitted(key) for _ in range(4)], "req-poison"
    )
    # An undecodable record on the same partition, straight to Kafka.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        garbage = await producer.send_and_wait(
            APPLICATIONS, value=b"\xff not json", key=key.encode(), headers=[("x", b"\xfe")]
        )
    finally:
        await producer.stop()

    processes("relay", "--dsn", service_db, "--bootstrap", bootstrap, name="relay")
    consumer = processes(
        *consumer_args(
            consumer_dsn, bootstrap, f"g-{uuid.uuid4()}", "--poison", poison.id, "--attempts", "3"
        ),
        name="consumer",
    )

    behind_ids = [e.id for e in behind]

    async def behind_handled() -> bool:
        return set((await effect_counts(consumer_dsn, behind_ids)).keys()) == set(behind_ids)

    await wait_for(behind_handled, what="the messages behind the poison")
    assert (await effect_counts(consumer_dsn, [poison.id]))[poison.id] == 0

    dlq = await read_topic(bootstrap, APPLICATIONS + ".dlq")
    letters = {
        dict(r.headers).get("ce_id", b"").decode() or f"offset-{r.offset}": dict(r.headers)
        for r in dlq
        if r.key == key.encode()
    }
    poison_letter = letters[poison.id]
    assert poison_letter["pearls_dlq_reason"] == b"handler_failed"
    assert poison_letter["pearls_dlq_attempts"] == b"3"
    assert b"poison event" in poison_letter["pearls_dlq_error"]
    assert poison_letter["pearls_dlq_original_topic"] == APPLICATIONS.encode()
    assert poison_letter["pearls_dlq_original_partition"].isdigit()
    assert poison_letter["pearls_dlq_original_offset"].isdigit()
    garbage_letters = [
        h
        for h in letters.values()
        if h.get("pearls_dlq_original_offset") == str(garbage.offset).encode()
    ]
    assert len(garbage_letters) == 1
    assert garbage_letters[0]["pearls_dlq_reason"] == b"undecodable"
    assert garbage_letters[0]["x"] == b"\xfe", "the original headers are kept byte for byte"
    assert consumer.output().count("handler_failed_retrying") >= 2


async def test_per_key_order_with_two_relays_and_three_partitions(
    service_db: str, postgres_server: Any, kafka_settings: KafkaSettings, processes: Any
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    consumer_dsn = postgres_server.new_database("consumer")
    keys = [str(uuid.uuid4()) for _ in range(12)]
    relays = [
        processes(
            "relay", "--dsn", service_db, "--bootstrap", bootstrap, "--batch", "7", name=f"relay{i}"
        )
        for i in range(2)
    ]
    consumer = processes(*consumer_args(consumer_dsn, bootstrap, f"g-{uuid.uuid4()}"), name="c")

    order: dict[str, list[str]] = {k: [] for k in keys}
    written: list[Envelope] = []
    for round_ in range(25):
        batch = await write_events(service_db, [submitted(k) for k in keys], f"req-order-{round_}")
        for envelope in batch:
            order[envelope.subject].append(envelope.id)
        written.extend(batch)
        if round_ == 10:
            active = await wait_for(
                lambda: _first_active(relays), what="one relay to become active"
            )
            active.kill()  # the standby takes over mid-stream
            relays.append(
                processes("relay", "--dsn", service_db, "--bootstrap", bootstrap, name="relay2")
            )
        await asyncio.sleep(0.02)

    ids = [e.id for e in written]

    async def all_handled() -> bool:
        return len(await effect_counts(consumer_dsn, ids)) == len(ids)

    await wait_for(all_handled, within=60, what="all 300 events")
    assert sum(1 for r in relays if "relay_active" in r.output()) >= 2, "fail-over happened"

    conn = await connect(consumer_dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, subject FROM effects WHERE event_id = ANY($1::text[]) ORDER BY seq",
            ids,
        )
    finally:
        await conn.close()
    handled: dict[str, list[str]] = {k: [] for k in keys}
    for row in rows:
        handled[row["subject"]].append(row["event_id"])
    assert handled == order  # each key's events took effect once, in the order written
    partitions = {
        r.partition
        for r in await read_topic(bootstrap, APPLICATIONS)
        if r.key in {k.encode() for k in keys}
    }
    assert len(partitions) == 3, "the keys spread over all three partitions"
    assert consumer.output().count("event_handled") >= len(ids)
