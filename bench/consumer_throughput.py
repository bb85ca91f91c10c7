"""The Kafka limit and a Pearls consumer against it, in one run on the same broker.

1. The limit: a raw aiokafka producer configured as ours (``acks=all``,
   idempotent, ``linger_ms=5``) sending small CloudEvents (ce_* headers, a JSON
   body as the services publish) as fast as it can, and a raw
   consume-and-commit loop (``getmany`` then ``commit``) reading them back.
2. A Pearls ``EventConsumer`` with the inbox and one database effect per event
   (an INSERT), per-message (one transaction and one offset commit per record,
   the default), batched (``subscribe(..., batch_size=N)``: one transaction
   and one offset commit per batch) and batched with a handler made by
   ``batched`` (one INSERT for each run of events, a row per event), each on a
   fresh database.

Consumer rates are counted from the first record seen to the last, so joining
the group is left out. Topics have 3 partitions, as the services' topics.

    uv run python bench/consumer_throughput.py [--events 20000] [--pearls-events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from common import infrastructure

from pearls_shared.cli import tune_garbage_collector
from pearls_shared.consumer import EventConsumer, batched
from pearls_shared.db import connect, create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_broker
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings
from pearls_shared.topics import ensure_topics

EVENT_TYPE = "pearls.application.submitted"
PARTITIONS = 3


def records(n: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Key, value, headers of ``n`` distinct events, as the relay would send them."""
    first = envelope_for(sample(EVENT_TYPE), correlation_id="bench")
    out = []
    for i in range(n):
        e = dataclasses.replace(first, id=str(uuid.uuid4()), subject=f"a-{i}")
        out.append((e.subject.encode(), e.value(), e.headers()))
    return out


def record_size(record: tuple[bytes, bytes, list[tuple[str, bytes]]]) -> int:
    key, value, headers = record
    return len(key) + len(value) + sum(len(k) + len(v) for k, v in headers)


async def produce(settings: KafkaSettings, topic: str, recs: list[Any]) -> float:
    """Raw aiokafka producer, configured as ``pearls_shared.kafka.new_producer``; msg/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="bench-raw-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    try:
        # Warm-up, not timed: metadata, the idempotent producer's id, connections.
        key, value, headers = recs[0]
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        started = time.perf_counter()
        futures = []
        for key, value, headers in recs:
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
            if len(futures) >= 2000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        return len(recs) / (time.perf_counter() - started)  # (one more record was sent)
    finally:
        await producer.stop()


async def raw_consume(settings: KafkaSettings, topic: str, n: int, *, each: bool = False) -> float:
    """A raw consume-and-commit loop: getmany, then commit (``each``: one commit per
    record, as the per-message consumer does); msg/s from first to last."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    try:
        seen = 0
        first = last = 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            got = sum(len(r) for r in batch.values())
            if not got:
                continue
            if not seen:
                first = time.perf_counter()
            if each:
                for tp, recs in batch.items():
                    for r in recs:
                        await consumer.commit({tp: r.offset + 1})
            else:
                await consumer.commit()
            seen += got
            last = time.perf_counter()
        return (seen - 1) / max(last - first, 1e-9)
    finally:
        await consumer.stop()


async def pearls_consume(
    settings: KafkaSettings,
    dsn: str,
    topic: str,
    n: int,
    batch_size: int | None,
    *,
    many: bool = False,
) -> dict[str, Any]:
    """An EventConsumer whose handler makes one INSERT per event (``many``: one INSERT
    for each run of events the batch hands it, a row per event); msg/s from first to
    last."""
    conn = await connect(dsn)
    try:
        await migrate(conn, shared_migrations())
        await conn.execute("CREATE TABLE effects (event_id text PRIMARY KEY, subject text)")
    finally:
        await conn.close()
    times: list[float] = []
    done = asyncio.Event()

    async def handler(conn: Any, envelope: Envelope, data: Any) -> None:
        await conn.execute(
            "INSERT INTO effects (event_id, subject) VALUES ($1, $2)", envelope.id, envelope.subject
        )

    async def insert_many(conn: Any, events: Sequence[tuple[Envelope, Any]]) -> None:
        await conn.execute(
            "INSERT INTO effects (event_id, subject) SELECT * FROM unnest($1::text[], $2::text[])",
            [envelope.id for envelope, _ in events],
            [envelope.subject for envelope, _ in events],
        )

    async def after_commit(envelope: Envelope) -> None:
        times.append(time.perf_counter())
        if len(times) >= n:
            done.set()

    name = f"bench-{'batch' if batch_size else 'single'}-{uuid.uuid4().hex[:6]}"
    pool = await create_pool(PostgresSettings(database_url=dsn))
    broker = new_broker(settings, client_id=name)
    consumer = EventConsumer(
        name=name,
        pool=pool,
        broker=broker,
        kafka=settings,
        handlers={EVENT_TYPE: batched(insert_many) if many else handler},
        delivery=DeliverySettings(),
        after_commit=after_commit,
    )
    consumer.subscribe([topic], batch_size=batch_size)
    await consumer.start()
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=max(120.0, n / 20))
    finally:
        await consumer.drain()  # as the service runtime stops
        await broker.stop()
        await consumer.stop()
        await pool.close()
    rate = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
    return {"events": n, "msgs_per_s": round(rate, 1), "batch_size": batch_size, "many": many}


async def measure(
    bootstrap: str, new_database: Any, *, events: int, pearls_events: int, batch_size: int
) -> dict[str, Any]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=PARTITIONS)
    run = uuid.uuid4().hex[:6]
    limit_topic, single_topic, batch_topic, many_topic = (
        f"pearls.bench.{what}.{run}.v1" for what in ("limit", "single", "batch", "many")
    )
    await ensure_topics(
        settings,
        [limit_topic, single_topic, batch_topic, many_topic]
        + [t + settings.dead_letter_suffix for t in (single_topic, batch_topic, many_topic)],
        partitions=PARTITIONS,
    )
    limit_records = records(events)
    produced = await produce(settings, limit_topic, limit_records)
    consumed = await raw_consume(settings, limit_topic, events)
    each_n = min(events, 2000)
    consumed_each = await raw_consume(settings, limit_topic, each_n, each=True)
    await produce(settings, single_topic, records(pearls_events))
    await produce(settings, batch_topic, records(max(pearls_events, events // 2)))
    await produce(settings, many_topic, records(max(pearls_events, events // 2)))
    single = await pearls_consume(
        settings, await new_database("single"), single_topic, pearls_events, None
    )
    batched = await pearls_consume(
        settings,
        await new_database("batch"),
        batch_topic,
        max(pearls_events, events // 2),
        batch_size,
    )
    batched_many = await pearls_consume(
        settings,
        await new_database("many"),
        many_topic,
        max(pearls_events, events // 2),
        batch_size,
        many=True,
    )
    for r in (single, batched, batched_many):
        r["ratio_to_raw_consume"] = round(r["msgs_per_s"] / consumed, 3)
    sizes = [record_size(r) for r in limit_records[:100]]
    return {
        "limit": {
            "events": events,
            "record_bytes_avg": round(sum(sizes) / len(sizes)),
            "partitions": PARTITIONS,
            "produce_msgs_per_s": round(produced, 1),
            "consume_commit_msgs_per_s": round(consumed, 1),
            "consume_commit_each_msgs_per_s": round(consumed_each, 1),
            "consume_commit_each_events": each_n,
        },
        "per_message": single,
        "batched": batched,
        "batched_many": batched_many,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--pearls-events", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    async def go() -> dict[str, Any]:
        with infrastructure() as (bootstrap, server):
            return await measure(
                bootstrap,
                server.new_database_async,
                events=args.events,
                pearls_events=args.pearls_events,
                batch_size=args.batch_size,
            )

    tune_garbage_collector()  # as in a service process: the same for baseline and Pearls
    print(json.dumps(asyncio.run(go()), indent=2))


if __name__ == "__main__":
    main()
