"""Start and stop the delivery plumbing of one service, in the right order.

A service's ``bootstrap.py`` calls :func:`service_runtime` from its FastAPI
lifespan (or its ``main``): migrations, pool, topics, the outbox relay, then
the consumers. Stopping goes the other way, so no handler runs on a closed pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from faststream.kafka import KafkaBroker

from pearls_shared.consumer import EventConsumer, Handler
from pearls_shared.db import connect, create_pool
from pearls_shared.kafka import check_connection, new_broker
from pearls_shared.migrations import load_folder, migrate, shared_migrations
from pearls_shared.relay import OutboxRelay
from pearls_shared.settings import (
    DeliverySettings,
    KafkaSettings,
    PostgresSettings,
    ServiceSettings,
    TracingSettings,
)
from pearls_shared.topics import CONTRACT_TOPICS, dead_letter_topic, ensure_topics
from pearls_shared.tracing import configure_tracing

log = structlog.get_logger(__name__)

_CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Subscription:
    """One consumer group: its name, the topics it reads and who handles what."""

    name: str
    topics: tuple[str, ...]
    handlers: Mapping[str, Handler]


@dataclass
class Runtime:
    service: str
    pool: asyncpg.Pool[Any]
    broker: KafkaBroker
    relay: OutboxRelay | None
    consumers: list[EventConsumer] = field(default_factory=list)
    relay_task: asyncio.Task[None] | None = None

    async def ready(self) -> bool:
        """The database and the broker answer and the relay task (active or on standby)
        still runs."""
        return all((await self.checks()).values())

    async def checks(self) -> dict[str, bool]:
        """Each dependency by name: ``database``, ``broker`` and (if it runs) ``relay``."""
        database, broker = await asyncio.gather(self._database_answers(), self._broker_answers())
        checks = {"database": database, "broker": broker}
        if self.relay_task is not None:
            checks["relay"] = not self.relay_task.done()
        return checks

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _broker_answers(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=_CHECK_TIMEOUT_S))
        except Exception as exc:  # a readiness probe answers, it never raises
            log.warning("broker_check_failed", error=repr(exc))
            return False


async def prepare_database(dsn: str, migrations_dir: Path | None) -> list[str]:
    """Apply the shared and the service's migrations; return what was applied now."""
    folder = load_folder("service", migrations_dir) if migrations_dir else []
    conn = await connect(dsn)
    try:
        return await migrate(conn, [*shared_migrations(), *folder])
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def service_runtime(
    *,
    service: str,
    db: PostgresSettings,
    kafka: KafkaSettings,
    delivery: DeliverySettings,
    migrations_dir: Path | None,
    subscriptions: tuple[Subscription, ...] = (),
    run_relay: bool = True,
    tracing: TracingSettings | None = None,
    consumer_batch_size: int | None = None,
) -> AsyncIterator[Runtime]:
    """Start the service's plumbing; stop it on exit. ``consumer_batch_size`` (more than 1)
    puts every subscription in the consumer's batch mode (``ServiceSettings.
    consumer_batch_size``); None or 1 handles one record per transaction."""
    configure_tracing(service, tracing)
    dsn = db.database_url.get_secret_value()
    await prepare_database(dsn, migrations_dir)
    # A refused password or an untrusted certificate stops the start here, with one line
    # naming the address and why (aiokafka itself says only "Unable to bootstrap").
    await check_connection(kafka, client_id=f"pearls-{service}")
    if (
        kafka.topic_retention_ms == -1
        or delivery.inbox_retention_s * 1000 < kafka.topic_retention_ms
    ):
        log.warning(
            "inbox_retention_below_topic_retention",
            inbox_retention_s=delivery.inbox_retention_s,
            topic_retention_ms=kafka.topic_retention_ms,
            risk="an event older than the inbox's memory, read again, would take effect again",
        )
    topics = [*CONTRACT_TOPICS, *(dead_letter_topic(t, kafka) for t in CONTRACT_TOPICS)]
    await ensure_topics(kafka, topics)
    pool = await create_pool(db)
    broker = new_broker(kafka, client_id=f"pearls-{service}")
    relay = OutboxRelay(service=service, dsn=dsn, kafka=kafka, delivery=delivery)
    runtime = Runtime(service=service, pool=pool, broker=broker, relay=relay if run_relay else None)
    batch = (
        consumer_batch_size if consumer_batch_size is not None and consumer_batch_size > 1 else None
    )
    for sub in subscriptions:
        consumer = EventConsumer(
            name=sub.name,
            pool=pool,
            broker=broker,
            kafka=kafka,
            handlers=sub.handlers,
            delivery=delivery,
            service=service,
        )
        consumer.subscribe(sub.topics, batch_size=batch)
        runtime.consumers.append(consumer)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop)) if run_relay else None
    runtime.relay_task = relay_task
    try:
        for consumer in runtime.consumers:
            await consumer.start()
        await broker.start()
        log.info(
            "service_started",
            consumers=[c.name for c in runtime.consumers],
            consumer_batch_size=batch or 1,
        )
        yield runtime
    finally:
        for consumer in runtime.consumers:
            await consumer.drain()  # offset commits in flight land while Kafka is open
        await broker.stop()
        for consumer in runtime.consumers:
            await consumer.stop()
        stop.set()
        if relay_task is not None:
            # A relay that already died must not hide the shutdown of the rest.
            [outcome] = await asyncio.gather(relay_task, return_exceptions=True)
            if isinstance(outcome, BaseException):
                log.error("relay_task_ended", error=repr(outcome))
        await pool.close()
        log.info("service_stopped")


async def every(
    interval: float, tick: Callable[[], Awaitable[object]], stop: asyncio.Event, *, name: str
) -> None:
    """Run ``tick`` every ``interval`` seconds until ``stop``; a failing tick is logged and
    the next one retries (a scheduler must not die of one bad row)."""
    while not stop.is_set():
        try:
            await tick()
        except Exception:
            log.exception("periodic_tick_failed", task=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def runtime_for(
    service: str,
    settings: ServiceSettings,
    *,
    kafka: KafkaSettings | None = None,
    delivery: DeliverySettings | None = None,
    subscriptions: tuple[Subscription, ...] = (),
) -> contextlib.AbstractAsyncContextManager[Runtime]:
    """``service_runtime`` from a service's settings (tests may pass Kafka and delivery)."""
    return service_runtime(
        service=service,
        db=settings.postgres(),
        kafka=kafka or settings.kafka(),
        delivery=delivery or settings.delivery(),
        migrations_dir=settings.migrations_dir,
        subscriptions=subscriptions,
        consumer_batch_size=settings.consumer_batch_size,
    )
