"""The outbox relay: publishes committed outbox rows to Kafka, in order.

One relay is active per service database, whatever the number of replicas:
it holds a session-level advisory lock, the others wait on standby and take
over when its connection goes away. Rows are published in id order with the
idempotent producer (``acks=all``), keyed by aggregate id, then marked sent.
A crash between publish and mark republishes those rows: consumers absorb the
duplicates through their inbox.

Order per key is the outbox id order. Two transactions that write events of the
same aggregate must therefore take that aggregate's row lock before inserting
into the outbox (the services lock the row they change), or the later id could
commit first and be published first.

The relay wakes on ``NOTIFY pearls_outbox`` (sent by a trigger at commit) and
polls as a fallback; sent rows older than the retention are purged.

Each publish is a producer span, child of the trace context stored with the
row (the request or event that wrote it); the record carries the producer
span's ``traceparent`` so consumers continue the same trace.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from pearls_shared.db import connect
from pearls_shared.kafka import new_producer
from pearls_shared.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING, PUBLISH_FAILURES
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.tracing import extract_headers, inject_headers, tracer

log = structlog.get_logger(__name__)

AfterPublish = Callable[[Sequence[int]], Awaitable[None]]

_PENDING = """
SELECT id, event_id::text, topic, message_key, headers::text AS headers, payload
FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1
"""
_MAX_BACKOFF_S = 30.0
# A full batch means more may wait; how many is counted at most this often, because
# counting scans every pending row (draining a large backlog would be quadratic).
_COUNT_EVERY_S = 1.0


class OutboxRelay:
    """Publishes one service's outbox; run it as a task next to the service."""

    def __init__(
        self,
        *,
        service: str,
        dsn: str,
        kafka: KafkaSettings,
        delivery: DeliverySettings | None = None,
        after_publish: AfterPublish | None = None,
    ) -> None:
        self._service = service
        self._dsn = dsn
        self._kafka = kafka
        self._delivery = delivery or DeliverySettings()
        # Called between publishing and marking sent: the crash window tests aim at.
        self._after_publish = after_publish
        self._wake = asyncio.Event()
        self.active = asyncio.Event()
        self._counted_at = -_COUNT_EVERY_S

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; survives database and broker outages."""
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._run_once(stop)
                backoff = 0.5
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
                self.active.clear()
                log.warning("relay_connection_lost", error=repr(exc), retry_in_s=backoff)
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _run_once(self, stop: asyncio.Event) -> None:
        conn = await connect(self._dsn)
        try:
            if not await self._acquire_leadership(conn, stop):
                return
            await conn.add_listener("pearls_outbox", self._on_notify)
            producer = new_producer(self._kafka, client_id=f"pearls-{self._service}-relay")
            await producer.start()
            self.active.set()
            log.info("relay_active", service=self._service)
            try:
                await self._publish_loop(conn, producer, stop)
            finally:
                self.active.clear()
                await producer.stop()
        finally:
            await conn.close()

    async def _acquire_leadership(self, conn: asyncpg.Connection[Any], stop: asyncio.Event) -> bool:
        lock = f"pearls_outbox_relay:{self._service}"
        announced = False
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
                return True
            if not announced:
                log.info("relay_standby", service=self._service)
                announced = True
            await _sleep_or_stop(stop, self._delivery.relay_poll_interval_s)
        return False

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(
        self, conn: asyncpg.Connection[Any], producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        last_purge = 0.0
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            published, failed = await self._publish_batch(conn, producer)
            if time.monotonic() - last_purge > 60:
                await self._purge(conn)
                last_purge = time.monotonic()
            if failed:
                failures += 1
                await _sleep_or_stop(stop, min(0.2 * 2**failures, _MAX_BACKOFF_S))
                continue
            failures = 0
            if published < self._delivery.relay_batch_size:
                await self._wait_for_work(stop)
        await self._drain(conn, producer)

    async def _drain(self, conn: asyncpg.Connection[Any], producer: AIOKafkaProducer) -> None:
        """Stopping: rows committed by now go out before the producer closes, so a clean
        stop (SIGTERM) leaves nothing behind; bounded by ``relay_drain_s``. A batch cut
        short is not marked sent and goes out again at the next start (the inbox absorbs
        the repeat), as after a crash."""
        try:
            async with asyncio.timeout(self._delivery.relay_drain_s):
                while True:
                    published, failed = await self._publish_batch(conn, producer)
                    if failed or published < self._delivery.relay_batch_size:
                        break
        except TimeoutError:
            pass
        pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        OUTBOX_PENDING.labels(self._service).set(pending)
        log.info("relay_drained", service=self._service, pending=pending)

    async def _publish_batch(
        self, conn: asyncpg.Connection[Any], producer: AIOKafkaProducer
    ) -> tuple[int, bool]:
        rows = await conn.fetch(_PENDING, self._delivery.relay_batch_size)
        if len(rows) < self._delivery.relay_batch_size:  # all there is
            OUTBOX_PENDING.labels(self._service).set(len(rows))
        elif time.monotonic() - self._counted_at >= _COUNT_EVERY_S:
            self._counted_at = time.monotonic()
            pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            OUTBOX_PENDING.labels(self._service).set(pending)
        if not rows:
            return 0, False
        # Enqueue the whole batch in id order, then wait: the producer keeps
        # per-partition order and retries without duplicates (idempotence).
        futures: list[asyncio.Future[Any]] = []
        spans: list[trace.Span] = []
        for row in rows:
            headers = [(name, value.encode()) for name, value in json.loads(row["headers"])]
            span = self._publish_span(row, headers)
            spans.append(span)
            inject_headers(headers, trace.set_span_in_context(span))
            try:
                futures.append(
                    await producer.send(
                        row["topic"], value=row["payload"], key=row["message_key"], headers=headers
                    )
                )
            except KafkaError as exc:  # e.g. no metadata: the rest of the batch waits
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                futures.append(failed)
                break
        rows = rows[: len(futures)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for span, result in zip(spans, results, strict=True):
            if isinstance(result, BaseException):
                span.record_exception(result)
                span.set_status(Status(StatusCode.ERROR, repr(result)[:200]))
            span.end()
        sent = [
            row["id"]
            for row, result in zip(rows, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        errors = [
            (row["id"], result)
            for row, result in zip(rows, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if self._after_publish is not None:
            await self._after_publish(sent)
        if sent:
            await conn.execute(
                "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL"
                " WHERE id = ANY($1::bigint[])",
                sent,
            )
            for row, result in zip(rows, results, strict=True):
                if not isinstance(result, BaseException):
                    EVENTS_PUBLISHED.labels(self._service, row["topic"]).inc()
        if errors:
            PUBLISH_FAILURES.labels(self._service).inc(len(errors))
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                [(row_id, repr(exc)[:2000]) for row_id, exc in errors],
            )
            log.warning("relay_publish_failed", failed=len(errors), error=repr(errors[0][1]))
        return len(rows), bool(errors)

    def _publish_span(self, row: asyncpg.Record, headers: list[tuple[str, bytes]]) -> trace.Span:
        """A producer span, child of the context stored with the row (if any)."""
        event_type = next((v.decode() for n, v in headers if n == "ce_type"), "")
        return tracer(self._service).start_span(
            f"{row['topic']} publish",
            context=extract_headers(headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "publish",
                "messaging.destination.name": row["topic"],
                "messaging.message.id": row["event_id"],
                "pearls.service": self._service,
                "pearls.event_type": event_type,
            },
        )

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(
            waiters,
            timeout=self._delivery.relay_poll_interval_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()

    async def _purge(self, conn: asyncpg.Connection[Any]) -> None:
        """Forget sent events and long-handled inbox entries (the relay is the one
        background task per database, so the purge runs once, not per replica)."""
        await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
            self._delivery.relay_retention_s,
        )
        await conn.execute(
            "DELETE FROM inbox WHERE handled_at < now() - make_interval(secs => $1)",
            self._delivery.inbox_retention_s,
        )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
