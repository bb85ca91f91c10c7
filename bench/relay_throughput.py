"""Outbox relay throughput, as a ratio to a bare idempotent producer in the same run.

Baseline: the same records sent straight to Kafka by an idempotent producer
(acks=all), in batches of the relay's size. Measured: the records written to
the outbox first, then published and marked sent by the relay. The ratio says
what the outbox's guarantees cost; absolute numbers depend on the machine.

Lag: rows committed one per transaction at a steady rate (half the relay's
measured throughput, or what four concurrent writers manage) while the relay runs; each
row's lag is ``sent_at - created_at`` (the relay marks a row sent after the
broker acknowledged it), reported as p50/p99. Target: at least 5,000 rows/s.

    uv run python bench/relay_throughput.py [--events 5000] [--rounds 3]

Kafka and PostgreSQL: KAFKA_BOOTSTRAP_SERVERS and PEARLS_TEST_POSTGRES_DSN if
set, else the local launchers (pearls-infra) start throwaway ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from common import infrastructure, latency_summary

from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.kafka import new_producer
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.outbox import envelope_for, write_envelope
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.topics import ensure_topics

TOPIC = "pearls.bench.v1"
TARGET_ROWS_PER_S = 5000
WRITERS = 4  # concurrent writers for the lag run: one alone cannot offer half the relay's rate


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


async def lag_under_load(
    settings: KafkaSettings, dsn: str, rate: float, seconds: float, batch: int
) -> dict[str, Any]:
    """Rows committed one per transaction at ``rate``/s for ``seconds`` while the relay
    runs; the distribution of sent_at - created_at."""
    conn = await connect(dsn)
    try:
        await migrate(conn, shared_migrations())
        event = sample("pearls.application.submitted")
        stop = asyncio.Event()
        relay = OutboxRelay(
            service=f"bench-{uuid.uuid4().hex[:6]}",
            dsn=dsn,
            kafka=settings,
            delivery=DeliverySettings(relay_batch_size=batch, relay_poll_interval_s=0.05),
        )
        task = asyncio.create_task(relay.run(stop))
        await asyncio.sleep(1.0)  # leadership and the producer's start
        n = max(1, int(rate * seconds))
        started = time.perf_counter()

        async def writer(k: int) -> None:
            """Rows k, k + WRITERS, ... each in its own transaction, on schedule."""
            own = await connect(dsn)
            try:
                for i in range(k, n, WRITERS):
                    ahead = started + i / rate - time.perf_counter()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                    async with own.transaction():
                        await write_envelope(
                            own, TOPIC, envelope_for(event, correlation_id="bench")
                        )
            finally:
                await own.close()

        await asyncio.gather(*(writer(k) for k in range(WRITERS)))
        offered = n / (time.perf_counter() - started)
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            await asyncio.sleep(0.05)
        stop.set()
        await task
        lags = [
            r["lag"]
            for r in await conn.fetch(
                "SELECT extract(epoch FROM sent_at - created_at)::float8 AS lag FROM outbox"
            )
        ]
        return {"offered_rows_per_s": round(offered, 1), "rows": n, **latency_summary(lags)}
    finally:
        await conn.close()


async def measure(
    bootstrap: str,
    new_database: Any,
    *,
    events: int,
    rounds: int,
    batch: int,
    lag_seconds: float,
) -> dict[str, Any]:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(settings, [TOPIC], partitions=3)
    event = sample("pearls.application.submitted")
    envelopes = [envelope_for(event, correlation_id="bench") for _ in range(events)]
    records = [(e.subject.encode(), e.value(), e.headers()) for e in envelopes]
    bases, relays = [], []
    for round_ in range(1, rounds + 1):
        base = await baseline(settings, records, batch)
        relay = await through_relay(settings, await new_database("bench"), events, batch)
        bases.append(base)
        relays.append(relay)
        print(
            f"relay round {round_}: baseline {base:,.0f} ev/s, relay {relay:,.0f} ev/s,"
            f" ratio {relay / base:.2f}"
        )
    rows_per_s = statistics.median(relays)
    lag = await lag_under_load(
        settings, await new_database("lag"), rows_per_s / 2, lag_seconds, batch
    )
    return {
        "events": events,
        "rounds": rounds,
        "batch": batch,
        "baseline_msgs_per_s": round(statistics.median(bases), 1),
        "rows_per_s": round(rows_per_s, 1),
        "ratio": round(statistics.median(r / b for r, b in zip(relays, bases, strict=True)), 3),
        "lag": lag,
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "target_met": rows_per_s >= TARGET_ROWS_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    args = parser.parse_args()

    async def go() -> dict[str, Any]:
        with infrastructure() as (bootstrap, server):
            return await measure(
                bootstrap,
                server.new_database_async,
                events=args.events,
                rounds=args.rounds,
                batch=args.batch,
                lag_seconds=args.lag_seconds,
            )

    print(json.dumps(asyncio.run(go()), indent=2))


if __name__ == "__main__":
    main()
