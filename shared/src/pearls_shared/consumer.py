"""Consuming events exactly-once in effect: inbox, retries, dead letters.

For each record, in partition order:

1. Decode the CloudEvent and validate its data against the contract model. A
   record that cannot be decoded, or names an event type the contract does not
   know, or whose data is invalid, goes straight to the dead-letter topic.
2. In one database transaction: insert ``(consumer, event id)`` into the inbox
   (``ON CONFLICT DO NOTHING``; a conflict means "seen, skip") and run the
   handler, which makes its effect on the same connection.
3. Only after that commit is the Kafka offset committed. A crash in between
   redelivers the record and the inbox absorbs it.

A handler that raises is retried with exponential backoff up to
``consumer_max_attempts`` times, then the record goes to the dead-letter topic
with headers saying why, and the partition moves on. An unreachable database or
dead-letter topic is not the message's fault: the record is rewound and tried
again later, never dead-lettered and never skipped.

Batch mode (opt-in: ``subscribe(topics, batch_size=N)``) handles up to N records
per database transaction: every event still gets its own inbox row (one
multi-row ``INSERT ... ON CONFLICT DO NOTHING``; the rows that conflict are the
events already seen) and its handler's effect, then one commit, then one offset
commit. The guarantees are the per-record ones: a batch holding a record that
cannot be decoded, or whose handler raises, is rolled back as a whole and
handled again one record at a time by the per-record path (retries, dead
letters), so no other record of the batch is lost or applied twice; an
infrastructure failure rewinds each partition of the batch to its first record
not yet finished (nothing finished is redone, no dead letter written twice; a
crash before the offset commit still can). A batch's offsets are committed in the
background, after its database commit, while the next batch is handled (one commit
in flight, see ``_OffsetCommits``); ``drain`` before the broker stops makes the last
one land. A batch handled one record at a time commits each finished record's
offset as it goes, so a slow record (a handler retrying) does not hold back the
dead letters before it. A handler made with
``batched`` is given each run of consecutive fresh events of its type in one call
(one statement for the run instead of one round trip per event); the per-record
path calls it with one event. A batch logs one ``batch_handled`` line naming
its event ids (the per-record path logs one line per event); metrics stay per
event.

Each record is handled inside a consumer span whose parent is the trace context
in the record's ``traceparent``/``tracestate`` headers; a record without them,
or with a malformed one, starts a new trace (it is never refused for that).
Events the handler writes to its outbox continue the same trace.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage as InjectedMessage
from faststream.kafka.message import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from pydantic import ValidationError

from pearls_shared import envelope as ce
from pearls_shared.events.base import EventData
from pearls_shared.events.registry import UnknownEventType, parse
from pearls_shared.kafka import new_producer
from pearls_shared.metrics import (
    DEAD_LETTERED,
    DUPLICATES_SKIPPED,
    EVENTS_HANDLED,
    HANDLER_LATENCY,
    HANDLER_RETRIES,
)
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.topics import dead_letter_topic
from pearls_shared.tracing import extract_headers, tracer

log = structlog.get_logger(__name__)

Handler = Callable[["asyncpg.Connection[Any]", ce.Envelope, Any], Awaitable[None]]
Hook = Callable[[ce.Envelope], Awaitable[None]]
ManyHandler = Callable[
    ["asyncpg.Connection[Any]", Sequence[tuple[ce.Envelope, Any]]], Awaitable[None]
]


@dataclass(frozen=True, slots=True)
class BatchedHandler:
    """A handler that makes the effects of several events at once (see ``batched``)."""

    many: ManyHandler

    async def __call__(
        self, conn: asyncpg.Connection[Any], envelope: ce.Envelope, data: Any
    ) -> None:
        await self.many(conn, ((envelope, data),))


def batched(many: ManyHandler) -> BatchedHandler:
    """A handler from a function of ``(conn, [(envelope, data), ...])``: in batch mode it
    gets every run of consecutive fresh events of its type in partition order, on the
    batch's connection; the per-record path gives it one event at a time."""
    return BatchedHandler(many)


# Failures of the infrastructure, not of the message: rewind and retry later.
_INFRA_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # server shutting down or restarting
    asyncpg.TooManyConnectionsError,
    KafkaError,
)

DLQ_HEADER_PREFIX = "pearls_dlq_"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str  # undecodable | unknown_type | invalid_data | handler_failed
    error: str
    attempts: int


class _Rewind(Exception):
    """The record must be read again later (infrastructure trouble)."""


class _OffsetCommits:
    """Offset commits of one Kafka consumer in batch mode that do not hold up the next
    batch: the group coordinator answers a commit only after lingering (Kafka 4:
    ``group.coordinator.append.linger.ms``, 5 ms), a third of a batch's time.

    Only offsets of records whose effects are committed in the database are added,
    never the consumer's position (which may already be past the next batch). One
    commit is in flight at a time, with the newest offsets; a failed one is tried
    again with the next. After ``drain`` every commit waits for its answer again: call
    it before the Kafka consumer closes, so a clean stop leaves nothing to redeliver.
    A crash may leave the last batch uncommitted: redelivered, the inbox skips it."""

    def __init__(self, consumer: AIOKafkaConsumer, group: str, *, wait: bool) -> None:
        self._consumer = consumer
        self._group = group
        self._pending: dict[TopicPartition, int] = {}
        self._in_flight: asyncio.Task[None] | None = None
        self.wait = wait

    async def add(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            self._pending[partition] = max(self._pending.get(partition, 0), record.offset + 1)
        if self.wait:
            await self.settle()
            await self._commit()
        elif self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._commit())

    async def settle(self) -> None:
        """Wait for the commit in flight, if any."""
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None

    async def _commit(self) -> None:
        while self._pending:
            assigned = self._consumer.assignment()  # a revoked partition is another's now
            offsets = {tp: offset for tp, offset in self._pending.items() if tp in assigned}
            self._pending = {}
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:  # tried again with the next batch's offsets
                log.warning("offset_commit_failed", consumer=self._group, error=repr(exc))
                self._pending = {**offsets, **self._pending}
                return


class EventConsumer:
    """Subscribes a consumer group to topics and routes events to handlers."""

    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool[Any],
        broker: KafkaBroker,
        kafka: KafkaSettings,
        handlers: Mapping[str, Handler],
        delivery: DeliverySettings | None = None,
        after_commit: Hook | None = None,
        service: str | None = None,
    ) -> None:
        self.name = name
        self._service = service or name
        self._pool = pool
        self._broker = broker
        self._kafka = kafka
        self._handlers = dict(handlers)
        self._delivery = delivery or DeliverySettings()
        # Called after the DB commit and before the offset commit (crash tests).
        self._after_commit = after_commit
        self._dlq_producer: AIOKafkaProducer | None = None
        self._commits: weakref.WeakKeyDictionary[AIOKafkaConsumer, _OffsetCommits] = (
            weakref.WeakKeyDictionary()
        )
        self._draining = False

    def subscribe(
        self,
        topics: Iterable[str],
        *,
        batch_size: int | None = None,
        batch_timeout_ms: int = 100,
    ) -> None:
        """Register the subscriber on the broker (before ``broker.start()``).

        ``batch_size`` (opt-in) handles up to that many records per database
        transaction (see the module's docstring); the default is one per record.
        """
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError("batch_size must be at least 1")

            async def on_batch(msg: InjectedMessage) -> None:
                await self.handle_batch(msg)

            self._broker.subscriber(
                *topics,
                group_id=self.name,
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.MANUAL,
                batch=True,
                max_records=batch_size,
                batch_timeout_ms=batch_timeout_ms,
                parser=_keep_raw_batch_parser,
                decoder=_raw_body,
                title=self.name,
            )(on_batch)
            return

        async def on_message(msg: InjectedMessage) -> None:
            await self.handle(msg)

        self._broker.subscriber(
            *topics,
            group_id=self.name,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            parser=_keep_raw_parser,
            decoder=_raw_body,
            title=self.name,
        )(on_message)

    async def start(self) -> None:
        self._dlq_producer = new_producer(self._kafka, client_id=f"{self.name}-dlq")
        await self._dlq_producer.start()

    async def drain(self) -> None:
        """Before the broker stops: the offset commit in flight lands, and every later
        one is awaited (batch mode commits in the background until then)."""
        self._draining = True
        for commits in list(self._commits.values()):
            commits.wait = True
            await commits.settle()
        log.info("consumer_drained", consumer=self.name)

    async def stop(self) -> None:
        if self._dlq_producer is not None:
            await self._dlq_producer.stop()

    async def handle(self, msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        try:
            await self._process(record)
        except _Rewind as exc:
            log.warning("consumer_rewind", reason=str(exc), offset=record.offset)
            await asyncio.sleep(self._delivery.consumer_backoff_max_s)
            await msg.nack()
            return
        await msg.ack()

    async def handle_batch(self, msg: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message
        done = 0  # records the per-record path has finished with
        commits = self._offset_commits(msg)
        try:
            if await self._process_batch(records):
                await commits.add(records)
                return
            for record in records:  # one by one: retries and dead letters as usual
                await self._process(record)
                done += 1
                # Finished (so is every record before it): its offset need not wait
                # for the rest of the batch, whose handlers may be retrying for a while.
                await commits.add((record,))
        except _Rewind as exc:
            log.warning("consumer_rewind", reason=str(exc), records=len(records), batch=True)
            await asyncio.sleep(self._delivery.consumer_backoff_max_s)
            # Rewind each partition only to its first record not yet finished: what was
            # handled or dead-lettered before the failure is not done (or written) again.
            await commits.settle()
            msg.raw_message = records[done:]
            await msg.nack()

    def _offset_commits(self, msg: KafkaMessage) -> _OffsetCommits:
        consumer: AIOKafkaConsumer = msg.consumer
        commits = self._commits.get(consumer)
        if commits is None:
            commits = self._commits[consumer] = _OffsetCommits(
                consumer, self.name, wait=self._draining
            )
        return commits

    async def _process_batch(self, records: tuple[ConsumerRecord[bytes, bytes], ...]) -> bool:
        """The whole batch in one transaction; False (nothing committed) when any
        record needs the per-record path (a decoding problem or a failing handler)."""
        items: list[tuple[ConsumerRecord[bytes, bytes], ce.Envelope, EventData, Handler]] = []
        for record in records:
            try:
                envelope = ce.decode(record.headers or (), record.value)
                data = parse(envelope.type, envelope.data)
            except (ce.EnvelopeError, UnicodeDecodeError, UnknownEventType, ValidationError):
                return False
            handler = self._handlers.get(envelope.type)
            if handler is not None:  # a contract event this consumer does not react to
                items.append((record, envelope, data, handler))
        if not items:
            return True
        started = time.perf_counter()
        try:
            handled = await self._handle_batch_in_transaction(items)
        except _INFRA_ERRORS as exc:
            raise _Rewind(repr(exc)) from exc
        except Exception as exc:
            log.warning("batch_failed_one_by_one", records=len(records), error=repr(exc))
            return False
        latency = (time.perf_counter() - started) / len(items)
        seen = collections.Counter(envelope.type for _, envelope, _, _ in items)
        fresh: collections.Counter[str] = collections.Counter()
        for _, envelope, _, _ in items:
            if envelope.id in handled:
                handled.discard(envelope.id)  # an id twice in the batch counts once as handled
                fresh[envelope.type] += 1
        # The per-record path's metrics, looking each labelled series up once per batch.
        for event_type, count in seen.items():
            observe = HANDLER_LATENCY.labels(self.name, event_type).observe
            for _ in range(count):
                observe(latency)
            if fresh[event_type]:
                EVENTS_HANDLED.labels(self.name, event_type).inc(fresh[event_type])
        duplicates = len(items) - fresh.total()
        if duplicates:
            DUPLICATES_SKIPPED.labels(self.name).inc(duplicates)
        # One line per batch: a line per event costs more than most handlers here.
        log.info(
            "batch_handled",
            consumer=self.name,
            handled=len(items) - duplicates,
            duplicates=duplicates,
            event_ids=[envelope.id for _, envelope, _, _ in items],
        )
        if self._after_commit is not None:
            for _, envelope, _, _ in items:
                await self._after_commit(envelope)
        return True

    async def _handle_batch_in_transaction(
        self, items: list[tuple[ConsumerRecord[bytes, bytes], ce.Envelope, EventData, Handler]]
    ) -> set[str]:
        """Inbox rows for every event, then each fresh event's handler, one commit.
        Returns the ids handled now (the others were seen before)."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO inbox (consumer, event_id, event_type)"
                " SELECT $1, i, t FROM unnest($2::text[], $3::text[]) AS u(i, t)"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                self.name,
                [envelope.id for _, envelope, _, _ in items],
                [envelope.type for _, envelope, _, _ in items],
            )
            fresh = {row["event_id"] for row in rows}
            handled: set[str] = set()
            due = []  # each fresh event once (an id twice in the batch is handled once)
            for item in items:
                if item[1].id in fresh and item[1].id not in handled:
                    handled.add(item[1].id)
                    due.append(item)
            for handler, same in itertools.groupby(due, key=lambda item: item[3]):
                if isinstance(handler, BatchedHandler):
                    run = [(record, envelope, data) for record, envelope, data, _ in same]
                    await self._handle_run(conn, handler, run)
                    continue
                for record, envelope, data, _ in same:
                    with (
                        structlog.contextvars.bound_contextvars(
                            event_id=envelope.id,
                            event_type=envelope.type,
                            correlation_id=envelope.correlation_id,
                            consumer=self.name,
                        ),
                        self._span(record) as span,
                    ):
                        _describe(span, envelope)
                        await handler(conn, envelope, data)
            return handled

    async def _handle_run(
        self,
        conn: asyncpg.Connection[Any],
        handler: BatchedHandler,
        run: list[tuple[ConsumerRecord[bytes, bytes], ce.Envelope, EventData]],
    ) -> None:
        """One call for a run of events: one span linked to each record's trace."""
        first = run[0][0]
        links = [
            Link(context)
            for record, _, _ in run
            if (
                context := trace.get_current_span(_record_context(record)).get_span_context()
            ).is_valid
        ]
        with (
            structlog.contextvars.bound_contextvars(consumer=self.name, batch=len(run)),
            tracer(self._service).start_as_current_span(
                f"{first.topic} process",
                kind=SpanKind.CONSUMER,
                links=links,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": first.topic,
                    "messaging.consumer.group.name": self.name,
                    "messaging.batch.message_count": len(run),
                },
            ),
        ):
            await handler.many(conn, [(envelope, data) for _, envelope, data in run])

    def _span(self, record: ConsumerRecord[bytes, bytes]) -> Any:
        return tracer(self._service).start_as_current_span(
            f"{record.topic} process",
            context=_record_context(record),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self.name,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        )

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        with self._span(record) as span:
            await self._process_in_span(record, span)

    async def _process_in_span(
        self, record: ConsumerRecord[bytes, bytes], span: trace.Span
    ) -> None:
        # Only the ce_* headers are the envelope: the trace headers are the tracer's
        # business (a bad one starts a new trace), never a reason to refuse the event.
        try:
            envelope = ce.decode(record.headers or (), record.value)
        except (ce.EnvelopeError, UnicodeDecodeError) as exc:
            await self._dead_letter(record, DeadLetter("undecodable", str(exc), 0))
            return
        with structlog.contextvars.bound_contextvars(
            event_id=envelope.id,
            event_type=envelope.type,
            correlation_id=envelope.correlation_id,
            consumer=self.name,
        ):
            _describe(span, envelope)
            try:
                data = parse(envelope.type, envelope.data)
            except UnknownEventType as exc:
                await self._dead_letter(record, DeadLetter("unknown_type", str(exc), 0))
                return
            except ValidationError as exc:
                await self._dead_letter(record, DeadLetter("invalid_data", _fields(exc), 0))
                return
            handler = self._handlers.get(envelope.type)
            if handler is None:
                return  # a contract event this consumer does not react to
            await self._run_with_retries(record, envelope, data, handler)

    async def _run_with_retries(
        self,
        record: ConsumerRecord[bytes, bytes],
        envelope: ce.Envelope,
        data: EventData,
        handler: Handler,
    ) -> None:
        attempts = self._delivery.consumer_max_attempts
        delay = self._delivery.consumer_backoff_initial_s
        for attempt in range(1, attempts + 1):
            try:
                handled = await self._handle_once(envelope, data, handler)
            except _INFRA_ERRORS as exc:
                raise _Rewind(repr(exc)) from exc
            except Exception as exc:
                if attempt == attempts:
                    error = "".join(traceback.format_exception_only(exc)).strip()
                    await self._dead_letter(record, DeadLetter("handler_failed", error, attempt))
                    return
                HANDLER_RETRIES.labels(self.name).inc()
                trace.get_current_span().add_event(
                    "retry", {"attempt": attempt, "error": repr(exc)[:500]}
                )
                log.warning("handler_failed_retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._delivery.consumer_backoff_max_s)
                continue
            if handled:
                EVENTS_HANDLED.labels(self.name, envelope.type).inc()
                log.info("event_handled")
            else:
                DUPLICATES_SKIPPED.labels(self.name).inc()
                log.info("duplicate_skipped")
            if self._after_commit is not None:
                await self._after_commit(envelope)
            return

    async def _handle_once(self, envelope: ce.Envelope, data: EventData, handler: Handler) -> bool:
        started = time.perf_counter()
        try:
            return await self._handle_in_transaction(envelope, data, handler)
        finally:
            HANDLER_LATENCY.labels(self.name, envelope.type).observe(time.perf_counter() - started)

    async def _handle_in_transaction(
        self, envelope: ce.Envelope, data: EventData, handler: Handler
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                envelope.id,
                envelope.type,
            )
            if not fresh:
                return False
            await handler(conn, envelope, data)
            return True

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], letter: DeadLetter) -> None:
        if self._dlq_producer is None:
            raise RuntimeError("EventConsumer.start() was not called")
        topic = dead_letter_topic(record.topic, self._kafka)
        why = {
            "reason": letter.reason,
            "error": letter.error[:4000],
            "attempts": str(letter.attempts),
            "consumer": self.name,
            "original_topic": record.topic,
            "original_partition": str(record.partition),
            "original_offset": str(record.offset),
            "time": ce.format_time(datetime.now(UTC)),
        }
        headers = list(record.headers or ()) + [
            (DLQ_HEADER_PREFIX + k, v.encode()) for k, v in why.items()
        ]
        try:
            await self._dlq_producer.send_and_wait(
                topic, value=record.value, key=record.key, headers=headers
            )
        except KafkaError as exc:
            raise _Rewind(f"dead-letter topic {topic} unreachable: {exc!r}") from exc
        DEAD_LETTERED.labels(self.name, letter.reason).inc()
        trace.get_current_span().set_status(
            Status(StatusCode.ERROR, f"dead-lettered: {letter.reason}")
        )
        log.error("dead_lettered", dlq_topic=topic, **why)


def _describe(span: trace.Span, envelope: ce.Envelope) -> None:
    """The event's ids on its consumer span, in either mode (traces are searched by them)."""
    span.set_attribute("messaging.message.id", envelope.id)
    span.set_attribute("pearls.event_type", envelope.type)
    span.set_attribute("pearls.correlation_id", envelope.correlation_id)


def _fields(exc: ValidationError) -> str:
    """``field.path: message`` for each problem, so the dead letter names the fault."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )


async def _keep_raw_parser(record: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """faststream's parser decodes header values as UTF-8 and fails on anything else;
    hand it a cleaned copy and keep the untouched record for dead-lettering."""
    cleaned = dataclasses.replace(
        record,
        headers=[(k, (v or b"").decode("utf-8", "replace").encode()) for k, v in record.headers],
    )
    message = await original(cleaned)
    message.raw_message = record
    return message


async def _keep_raw_batch_parser(records: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """The batch form of ``_keep_raw_parser``: the untouched records stay the raw message.
    faststream's batch message takes its metadata from the first record and decodes every
    record's headers for ``batch_headers``, which nothing here reads: it is given the
    first record alone (cleaned), and acks and rewinds by the raw records."""
    first = records[0]
    cleaned = dataclasses.replace(
        first,
        headers=[(k, (v or b"").decode("utf-8", "replace").encode()) for k, v in first.headers],
    )
    message = await original((cleaned,))
    message.raw_message = records
    return message


def _record_context(record: ConsumerRecord[bytes, bytes]) -> Any:
    """The trace context a record's headers carry (an empty one when none or malformed)."""
    return extract_headers(list(record.headers or ()))


async def _raw_body(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """No JSON decoding by faststream: envelopes are decoded (and judged) here."""
    return msg.body
