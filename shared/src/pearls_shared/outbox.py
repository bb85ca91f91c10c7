"""Writing events into the transactional outbox.

``record_event`` must run inside the transaction that changes the business
rows: both commit or neither does, so an event is never published for a
change that rolled back, nor lost for one that committed.

The trace context current when the event is written (``traceparent`` and
``tracestate``, see ``pearls_shared.tracing``) is stored with the row among its
headers: the relay publishes later, from another task, and continues that trace.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from pearls_shared.envelope import Envelope, new_event_id
from pearls_shared.events.base import EventData
from pearls_shared.tracing import inject_headers


class OutboxMisuse(RuntimeError):
    """``record_event`` was called outside a transaction."""


def service_source(service: str) -> str:
    """The CloudEvents ``source`` of a Pearls service."""
    return f"/pearls/{service}"


def envelope_for(
    event: EventData,
    *,
    correlation_id: str,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """The CloudEvent for ``event``; its source is always the producing service."""
    return Envelope(
        id=event_id or new_event_id(),
        type=event.event_type,
        source=service_source(event.producer),
        subject=event.key(),
        time=time or datetime.now(UTC),
        data=event.to_data(),
        correlation_id=correlation_id,
        causation_id=causation_id,
        dataschema=event.dataschema(),
    )


async def record_event(
    conn: asyncpg.Connection[Any],
    event: EventData,
    *,
    correlation_id: str,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    """Insert the event into the outbox of the caller's open transaction."""
    if not conn.is_in_transaction():
        raise OutboxMisuse("record_event needs the transaction of the business change")
    envelope = envelope_for(
        event,
        correlation_id=correlation_id,
        causation_id=causation_id,
        event_id=event_id,
    )
    await write_envelope(conn, event.topic, envelope)
    return envelope


async def write_envelope(conn: asyncpg.Connection[Any], topic: str, envelope: Envelope) -> None:
    kafka_headers = envelope.headers()
    inject_headers(kafka_headers)  # the trace this change belongs to, for the relay
    headers = [[name, value.decode()] for name, value in kafka_headers]
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, message_key, headers, payload)"
        " VALUES ($1, $2, $3, $4::text::jsonb, $5)",
        envelope.id,
        topic,
        envelope.subject.encode(),
        json.dumps(headers),
        envelope.value(),
    )
