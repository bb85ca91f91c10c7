"""Outbox relay throughput, as a ratio to a bare idempotent producer in the same run.

Baseline: the same records sent straight to Kafka by an idempotent producer
(acks=all), in batches of the relay's size. Measured: the records written to
the outbox first, then published and marked sent by the relay. The ratio says
what the outbox's guarantees cost; absolute numbers depend on the machine.

    uv run python bench/relay_throughput.py [--events 5000] [--rounds 3]

Kafka and PostgreSQL: KAFKA_BOOTSTRAP_SERVERS and PEARLS_TEST_POSTGRES_DSN if
set, else the local launchers (pearls-infra) start throwaway ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

from pearls_localinfra.kafka import KafkaCluster
from pearls_localinfra.pgserver import PostgresServer
from pearls_localinfra.postgres import PostgresCluster
from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_producer
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.outbox import envelope_for, write_envelope
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.topics import ensure_topics

TOPIC = "pearls.bench.v1"


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, PostgresServer]]:
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            kafka = KafkaCluster(nodes=1, workdir=tempfile.mkdtemp(prefix="bench-kafka-"))
            kafka.start()
            stack.callback(kafka.stop)
            bootstrap = kafka.bootstrap_servers
        dsn = os.environ.get("PEARLS_TEST_POSTGRES_DSN")
        if not dsn:
            cluster = PostgresCluster(tempfile.mkdtemp(prefix="bench-pg-"))
            cluster.start()
            stack.callback(cluster.stop)
            dsn = cluster.superuser_dsn
        server = PostgresServer(dsn, source="bench")
        stack.callback(server.close)
        yield bootstrap, server


async def baseline(
    settings: KafkaSettings, records: list[tuple[bytes, bytes, list]], batch: int
) -> float:
    producer = new_producer(settings, client_id="bench-baseline")
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            futures = [
                await producer.send(TOPIC, value=v, key=k, headers=h)
                for k, v, h in records[i : i + batch]
            ]
            await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def through_relay(settings: KafkaSettings, dsn: str, n: int, batch: int) -> float:
    conn = await connect(dsn)
    try:
        await migrate(conn, shared_migrations())
        event = sample("pearls.application.submitted")
        async with conn.transaction():
            for _ in range(n):
                await write_envelope(conn, TOPIC, envelope_for(event, correlation_id="bench"))
        stop = asyncio.Event()
        relay = OutboxRelay(
            service=f"bench-{uuid.uuid4().hex[:6]}",
            dsn=dsn,
            kafka=settings,
            delivery=DeliverySettings(relay_batch_size=batch, relay_poll_interval_s=0.05),
        )
        started = time.perf_counter()
        task = asyncio.create_task(relay.run(stop))
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        return n / elapsed
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> None:
    with infrastructure() as (bootstrap, server):
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        await ensure_topics(settings, [TOPIC], partitions=3)
        event = sample("pearls.application.submitted")
        envelopes = [envelope_for(event, correlation_id="bench") for _ in range(args.events)]
        records = [(e.subject.encode(), e.value(), e.headers()) for e in envelopes]
        ratios = []
        for round_ in range(1, args.rounds + 1):
            base = await baseline(settings, records, args.batch)
            relay = await through_relay(
                settings, await server.new_database_async("bench"), args.events, args.batch
            )
            ratios.append(relay / base)
            print(
                f"round {round_}: baseline {base:,.0f} ev/s, relay {relay:,.0f} ev/s,"
                f" ratio {relay / base:.2f}"
            )
        print(
            f"relay/baseline throughput ratio: median {statistics.median(ratios):.2f}"
            f" over {args.rounds} rounds of {args.events} events (batch {args.batch})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
