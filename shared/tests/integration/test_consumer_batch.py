"""The consumer's batch mode keeps the per-record guarantees, against real Kafka and PostgreSQL.

Many records per database transaction, yet every event takes effect once; a
poison event in a batch is dead-lettered while the others take effect once; a
redelivered batch changes nothing. Each holds for a plain handler and for one made
with ``batched`` (given a run of events per call). A plain handler's events keep
their own consumer spans, with their ids.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry.trace import SpanKind

from pearls_shared.consumer import EventConsumer, batched
from pearls_shared.db import connect, create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_broker
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings
from pearls_shared.testing import read_topic, recorded_spans, wait_for
from pearls_shared.topics import ensure_topics

pytestmark = pytest.mark.integration

EVENT_TYPE = "pearls.application.submitted"


def envelopes(n: int) -> list[Envelope]:
    event = sample(EVENT_TYPE)
    first = envelope_for(event, correlation_id="batch")
    # Spread over the partitions by key, several events per key.
    return [
        dataclasses.replace(first, id=str(uuid.uuid4()), subject=f"app-{i % 7}") for i in range(n)
    ]


async def topic(kafka_settings: KafkaSettings) -> str:
    name = f"pearls.batchtest.{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(
        kafka_settings, [name, name + kafka_settings.dead_letter_suffix], partitions=3
    )
    return name


async def publish(kafka_settings: KafkaSettings, topic: str, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for e in events:
            await producer.send(topic, value=e.value(), key=e.subject.encode(), headers=e.headers())
        await producer.flush()
    finally:
        await producer.stop()


@asynccontextmanager
async def consuming(
    kafka_settings: KafkaSettings,
    dsn: str,
    topic: str,
    *,
    name: str,
    poison: set[str] | None = None,
    committed: list[str] | None = None,
    runs: list[int] | None = None,
    unreachable_once: set[str] | None = None,
    held: dict[str, asyncio.Event] | None = None,
) -> AsyncIterator[None]:
    """A batch-mode consumer whose handler writes one effect row per event; with
    ``runs``, a ``batched`` handler writing a run at once, noting each run's size;
    the events in ``unreachable_once`` meet an unreachable database the first time;
    the handler of an event in ``held`` waits until its event is set."""

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        if held and envelope.id in held:
            await held[envelope.id].wait()
        if unreachable_once and envelope.id in unreachable_once:
            unreachable_once.discard(envelope.id)
            raise ConnectionRefusedError("database unreachable")
        await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", envelope.id)
        if poison and envelope.id in poison:
            raise RuntimeError("poison")

    async def many(conn: Any, events: Sequence[tuple[Envelope, Any]]) -> None:
        await conn.execute(
            "INSERT INTO effects (event_id)"
            " SELECT e FROM unnest($1::text[]) WITH ORDINALITY AS u(e, n) ORDER BY n",
            [envelope.id for envelope, _ in events],
        )
        if poison and {envelope.id for envelope, _ in events} & poison:
            raise RuntimeError("poison")
        assert runs is not None
        runs.append(len(events))

    async def after_commit(envelope: Envelope) -> None:
        if committed is not None:
            committed.append(envelope.id)

    pool = await create_pool(PostgresSettings(database_url=dsn))
    broker = new_broker(kafka_settings, client_id=name)
    consumer = EventConsumer(
        name=name,
        pool=pool,
        broker=broker,
        kafka=kafka_settings,
        handlers={EVENT_TYPE: handler if runs is None else batched(many)},
        delivery=DeliverySettings(
            consumer_max_attempts=2, consumer_backoff_initial_s=0.01, consumer_backoff_max_s=0.05
        ),
        after_commit=after_commit,
    )
    consumer.subscribe([topic], batch_size=25, batch_timeout_ms=50)
    await consumer.start()
    await broker.start()
    try:
        yield
    finally:
        await consumer.drain()  # as the service runtime stops
        await broker.stop()
        await consumer.stop()
        await pool.close()


async def effects_in_order(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return [r["event_id"] for r in await conn.fetch("SELECT * FROM effects ORDER BY seq")]
    finally:
        await conn.close()


async def effects(dsn: str) -> collections.Counter[str]:
    conn = await connect(dsn)
    try:
        return collections.Counter(r["event_id"] for r in await conn.fetch("SELECT * FROM effects"))
    finally:
        await conn.close()


@pytest.fixture
async def effects_db(service_db: str) -> str:
    conn = await connect(service_db)
    try:
        await conn.execute(
            "CREATE TABLE effects (seq bigserial, event_id text NOT NULL)"
        )  # twice: seen
    finally:
        await conn.close()
    return service_db


BATCHED = pytest.mark.parametrize("runs", [None, []], ids=["per-event-handler", "batched-handler"])


@BATCHED
async def test_every_event_takes_effect_once_and_a_redelivered_batch_changes_nothing(
    effects_db: str, kafka_settings: KafkaSettings, runs: list[int] | None
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(120)
    await publish(kafka_settings, name, events)
    committed: list[str] = []
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(
        kafka_settings, effects_db, name, name=group, committed=committed, runs=runs
    ):

        async def all_applied() -> bool:
            return sum((await effects(effects_db)).values()) >= len(events)

        await wait_for(all_applied, what="every event to take effect")
        applied = await effects(effects_db)
        assert applied == {e.id: 1 for e in events}

        # The same events again (a producer's retry, a replay): the inbox absorbs them.
        await publish(kafka_settings, name, events[:60])

        async def redelivered_seen() -> bool:
            return len(committed) >= len(events) + 60

        await wait_for(redelivered_seen, what="the redelivered events to be consumed")
    assert await effects(effects_db) == applied
    # Partition order holds: each key's events took effect in the order published.
    position = {event_id: i for i, event_id in enumerate(await effects_in_order(effects_db))}
    for key in {e.subject for e in events}:
        published = [e.id for e in events if e.subject == key]
        assert sorted(published, key=position.__getitem__) == published
    if runs is not None:  # the batched handler was given runs, not single events
        assert sum(runs) == len(events) and max(runs) > 1, runs


@BATCHED
async def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_applied_once(
    effects_db: str, kafka_settings: KafkaSettings, runs: list[int] | None
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(60)
    poison = {events[10].id, events[41].id}
    await publish(kafka_settings, name, events)
    committed: list[str] = []
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(
        kafka_settings, effects_db, name, name=group, poison=poison, committed=committed, runs=runs
    ):

        async def others_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events} - poison

        await wait_for(others_applied, what="the events around the poison to take effect")

        async def dead_lettered() -> set[str]:
            records = await read_topic(
                kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
            )
            return {dict(r.headers)["ce_id"].decode() for r in records} & poison

        assert await wait_for(dead_lettered, what="the poison events in the DLQ") == poison
        letters = await read_topic(
            kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
        )
        assert {dict(r.headers)["pearls_dlq_reason"] for r in letters} == {b"handler_failed"}
    applied = await effects(effects_db)
    # The poison handler's own row was rolled back with its transaction, every time.
    assert applied == {e.id: 1 for e in events if e.id not in poison}


async def test_an_undecodable_record_in_a_batch_is_dead_lettered_and_the_rest_applied_once(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(40)
    await publish(kafka_settings, name, events[:20])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:  # no CloudEvent headers, not even JSON
        await producer.send_and_wait(name, value=b"\xff not an event", key=b"app-3")
    finally:
        await producer.stop()
    await publish(kafka_settings, name, events[20:])
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(kafka_settings, effects_db, name, name=group):

        async def all_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events}

        await wait_for(all_applied, what="the events around the undecodable record")

        async def dead_letters() -> list[Any]:
            return await read_topic(
                kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
            )

        [letter] = await wait_for(dead_letters, what="the undecodable record in the DLQ")
        assert dict(letter.headers)["pearls_dlq_reason"] == b"undecodable"
    assert await effects(effects_db) == {e.id: 1 for e in events}


async def test_a_rewind_in_the_middle_of_a_batch_does_not_dead_letter_twice(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    """The batch falls back to one record at a time for its undecodable record; a later
    record of the batch then meets an outage, and the partition is rewound to that
    record only: the dead letter before it is not written again."""
    name = await topic(kafka_settings)
    events = [dataclasses.replace(e, subject="app-3") for e in envelopes(20)]  # one partition
    await publish(kafka_settings, name, events[:5])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(name, value=b"\xff not an event", key=b"app-3")
    finally:
        await producer.stop()
    await publish(kafka_settings, name, events[5:])
    unreachable_once = {events[10].id}  # in the same batch of 25, after the bad record
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(
        kafka_settings, effects_db, name, name=group, unreachable_once=unreachable_once
    ):

        async def all_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events}

        await wait_for(all_applied, what="every event, the one after the outage too")
        assert not unreachable_once  # the outage did happen
        letters = await read_topic(
            kafka_settings.bootstrap_servers, name + kafka_settings.dead_letter_suffix
        )
        assert [dict(r.headers)["pearls_dlq_reason"] for r in letters] == [b"undecodable"]
    assert await effects(effects_db) == {e.id: 1 for e in events}


async def group_behind(kafka_settings: KafkaSettings, group: str, topic: str) -> int:
    """Records of ``topic`` the group has not committed (its lag)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await reader.end_offsets(partitions)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in ends)
    finally:
        await reader.stop()
        await admin.close()


async def test_offsets_are_committed_in_the_background_and_a_clean_stop_leaves_none_behind(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    """The handler does not wait for the broker's answer to an offset commit, yet the
    group catches up with the topic while it runs; stopped (drained) and started
    again, it is given only what came since."""
    name = await topic(kafka_settings)
    events = envelopes(150)
    await publish(kafka_settings, name, events)
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(kafka_settings, effects_db, name, name=group):

        async def all_applied() -> bool:
            return set(await effects(effects_db)) >= {e.id for e in events}

        await wait_for(all_applied, what="every event")

        async def caught_up() -> bool:
            return await group_behind(kafka_settings, group, name) == 0

        await wait_for(caught_up, what="the group's offsets to reach the end of the topic")
    later = envelopes(5)
    handed: list[str] = []
    async with consuming(kafka_settings, effects_db, name, name=group, committed=handed):
        await publish(kafka_settings, name, later)

        async def later_handed() -> bool:
            return set(handed) >= {e.id for e in later}

        await wait_for(later_handed, what="the events published after the restart")
    assert sorted(handed) == sorted(e.id for e in later)  # nothing of the first run again
    assert await group_behind(kafka_settings, group, name) == 0
    assert await effects(effects_db) == {e.id: 1 for e in events + later}


async def test_records_finished_one_by_one_are_committed_while_the_batch_is_still_handled(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    """A batch that falls back to one record at a time commits the offset of each
    finished record (a dead letter too) without waiting for a slow one after it: a
    crash then does not dead-letter the finished ones again."""
    name = await topic(kafka_settings)
    events = [dataclasses.replace(e, subject="app-3") for e in envelopes(8)]  # one partition
    await publish(kafka_settings, name, events[:3])  # offsets 0-2
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(name, value=b"\xff not an event", key=b"app-3")  # 3
    finally:
        await producer.stop()
    await publish(kafka_settings, name, events[3:])  # offsets 4-8
    slow = events[5]  # offset 6
    held = {slow.id: asyncio.Event()}
    group = f"batch-{uuid.uuid4().hex[:8]}"
    async with consuming(kafka_settings, effects_db, name, name=group, held=held):

        async def all_before_the_slow_one_committed() -> bool:
            return await group_behind(kafka_settings, group, name) == 3  # offsets 6-8

        await wait_for(
            all_before_the_slow_one_committed,
            what="the offsets up to the slow record, committed while it is handled",
        )
        assert slow.id not in await effects(effects_db)  # still being handled
        held[slow.id].set()

        async def caught_up() -> bool:
            return await group_behind(kafka_settings, group, name) == 0

        await wait_for(caught_up, what="the rest of the batch committed")
    assert await effects(effects_db) == {e.id: 1 for e in events}


async def test_a_batched_run_has_one_span_linked_to_each_events_trace(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    name = await topic(kafka_settings)
    events = envelopes(30)
    traces = {e.id: uuid.uuid4().int >> 64 << 64 | 1 for e in events}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for e in events:
            parent = f"00-{traces[e.id]:032x}-{uuid.uuid4().int >> 64:016x}-01".encode()
            await producer.send(
                name,
                value=e.value(),
                key=e.subject.encode(),
                headers=[*e.headers(), ("traceparent", parent)],
            )
        await producer.flush()
    finally:
        await producer.stop()
    runs: list[int] = []
    with recorded_spans() as spans:
        group = f"batch-{uuid.uuid4().hex[:8]}"
        async with consuming(kafka_settings, effects_db, name, name=group, runs=runs):

            async def all_applied() -> bool:
                return sum((await effects(effects_db)).values()) >= len(events)

            await wait_for(all_applied, what="every event to take effect")
        batch_spans = [
            s
            for s in spans.get_finished_spans()
            if s.name == f"{name} process"
            and (s.attributes or {}).get("messaging.batch.message_count")
        ]
    assert sorted(s.attributes["messaging.batch.message_count"] for s in batch_spans) == sorted(
        runs
    )
    linked = [link.context.trace_id for s in batch_spans for link in s.links]
    assert sorted(linked) == sorted(traces.values())


async def test_each_event_of_a_batch_has_its_consumer_span_with_its_ids(
    effects_db: str, kafka_settings: KafkaSettings
) -> None:
    """As on the per-record path: traces are found by the event's id and correlation id."""
    name = await topic(kafka_settings)
    events = envelopes(30)
    await publish(kafka_settings, name, events)
    group = f"batch-{uuid.uuid4().hex[:8]}"
    with recorded_spans() as spans:
        async with consuming(kafka_settings, effects_db, name, name=group):

            async def all_applied() -> bool:
                return sum((await effects(effects_db)).values()) >= len(events)

            await wait_for(all_applied, what="every event to take effect")
        finished = spans.get_finished_spans()
    ours = [
        s
        for s in finished
        if s.kind is SpanKind.CONSUMER
        and (s.attributes or {}).get("messaging.consumer.group.name") == group
    ]
    assert {(s.attributes or {}).get("messaging.message.id") for s in ours} == {
        e.id for e in events
    }
    assert {(s.attributes or {}).get("pearls.correlation_id") for s in ours} == {"batch"}
    assert {(s.attributes or {}).get("pearls.event_type") for s in ours} == {EVENT_TYPE}
