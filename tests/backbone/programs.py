"""Stand-alone processes for the backbone's fault tests.

``relay``     runs one service's outbox relay; ``--crash-after-publish`` kills the
              process (SIGKILL) after its first publish and before marking sent.
``consumer``  runs an inbox consumer whose effect is a row in ``effects``;
              ``--crash-after-commit`` kills it after its first DB commit and
              before the offset commit; ``--poison`` names event ids whose
              handler always fails.

The tests start these as real processes so that a kill is a real kill.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from typing import Any

import asyncpg

from pearls_shared.consumer import EventConsumer
from pearls_shared.db import connect, create_pool
from pearls_shared.envelope import Envelope
from pearls_shared.kafka import new_broker
from pearls_shared.logging import configure_logging
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings

EFFECTS = """
CREATE TABLE IF NOT EXISTS effects (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL,
    event_type text NOT NULL,
    subject    text NOT NULL,
    pid        integer NOT NULL
)
"""


def _die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_relay(args: argparse.Namespace) -> None:
    configure_logging("test-relay")

    async def crash(sent: Sequence[int]) -> None:
        if sent:
            print(f"crashing after publishing {len(sent)} rows", flush=True)
            _die()

    relay = OutboxRelay(
        service=args.service,
        dsn=args.dsn,
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap),
        delivery=DeliverySettings(relay_poll_interval_s=0.2, relay_batch_size=args.batch),
        after_publish=crash if args.crash_after_publish else None,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await _until_terminated()
    stop.set()
    await task


async def run_consumer(args: argparse.Namespace) -> None:
    configure_logging("test-consumer")
    conn = await connect(args.dsn)
    try:
        await migrate(conn, shared_migrations())
        await conn.execute(EFFECTS)
    finally:
        await conn.close()
    pool = await create_pool(PostgresSettings(database_url=args.dsn))
    poison = set(args.poison)

    async def record(conn: asyncpg.Connection[Any], envelope: Envelope, data: Any) -> None:
        if envelope.id in poison:
            raise RuntimeError(f"poison event {envelope.id}")
        await conn.execute(
            "INSERT INTO effects (event_id, event_type, subject, pid) VALUES ($1, $2, $3, $4)",
            envelope.id,
            envelope.type,
            envelope.subject,
            os.getpid(),
        )

    async def crash(envelope: Envelope) -> None:
        print(f"crashing after committing {envelope.id}", flush=True)
        _die()

    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    broker = new_broker(kafka, client_id=args.group)
    consumer = EventConsumer(
        name=args.group,
        pool=pool,
        broker=broker,
        kafka=kafka,
        handlers=dict.fromkeys(args.types, record),
        delivery=DeliverySettings(
            consumer_max_attempts=args.attempts,
            consumer_backoff_initial_s=0.05,
            consumer_backoff_max_s=0.2,
        ),
        after_commit=crash if args.crash_after_commit else None,
    )
    consumer.subscribe(args.topics)
    await consumer.start()
    await broker.start()
    print("consumer started", flush=True)
    try:
        await _until_terminated()
    finally:
        await broker.stop()
        await consumer.stop()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    relay = sub.add_parser("relay")
    relay.add_argument("--dsn", required=True)
    relay.add_argument("--bootstrap", required=True)
    relay.add_argument("--service", default="testsvc")
    relay.add_argument("--batch", type=int, default=50)
    relay.add_argument("--crash-after-publish", action="store_true")
    consumer = sub.add_parser("consumer")
    consumer.add_argument("--dsn", required=True)
    consumer.add_argument("--bootstrap", required=True)
    consumer.add_argument("--group", required=True)
    consumer.add_argument("--topics", nargs="+", required=True)
    consumer.add_argument("--types", nargs="+", required=True)
    consumer.add_argument("--poison", nargs="*", default=[])
    consumer.add_argument("--attempts", type=int, default=3)
    consumer.add_argument("--crash-after-commit", action="store_true")
    args = parser.parse_args()
    asyncio.run(run_relay(args) if args.command == "relay" else run_consumer(args))


if __name__ == "__main__":
    main()
