"""One trace follows an application from the HTTP request to its receipt e-mail.

The applications and notifications services run in-process on the shared broker
and fresh databases, with an in-memory span exporter: the submission's server
span, the relay's publish span, notifications' consumer span and the e-mail's
delivery span share one trace id, which the Kafka record's ``traceparent`` and
the delivery record in notifications' database carry too.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from pearls_applications.bootstrap import create_app as applications_app
from pearls_applications.config import CoordinatorEntry
from pearls_applications.config import Settings as ApplicationsSettings
from pearls_notifications.bootstrap import create_app as notifications_app
from pearls_notifications.config import Settings as NotificationsSettings
from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS
from pearls_shared.db import connect
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import read_topic, recorded_spans, start_group_at_end, wait_for
from pearls_shared.topics import APPLICATIONS
from pearls_shared.tracing import extract_headers

pytestmark = pytest.mark.integration

COORDINATOR = "trace-coordinator-token-0123456789"
AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
DELIVERY = DeliverySettings(relay_poll_interval_s=0.2)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


class _Sink:
    """An SMTP server on loopback that accepts everything."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
async def services(
    postgres_server: Any,
    kafka_settings: KafkaSettings,
    contract_topics: tuple[str, ...],
    smtp_port: int,
    spans: InMemorySpanExporter,
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    applications = applications_app(
        ApplicationsSettings(
            database_url=postgres_server.new_database("trace_apps"),
            coordinators=[CoordinatorEntry.model_validate({"id": "anna", "token": COORDINATOR})],
        ),
        kafka=kafka_settings,
        delivery=DELIVERY,
    )
    group = f"notifications-trace-{uuid.uuid4()}"
    # From the topics' end: this test's submission, not every earlier test's events.
    await start_group_at_end(kafka_settings.bootstrap_servers, group, CONSUMED_TOPICS)
    notifications_dsn = postgres_server.new_database("trace_ntf")
    notifications = notifications_app(
        NotificationsSettings(
            database_url=notifications_dsn,
            consumer_group=group,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_timeout_s=5.0,
            sender_idle_poll_s=0.2,
            rate_limit_per_minute=60_000.0,
            unsubscribe_secret="trace-secret",
        ),
        kafka_settings,
    )
    async with (
        LifespanManager(applications, startup_timeout=60) as apps,
        LifespanManager(notifications, startup_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps.app), base_url="http://applications"
        ) as client,
    ):
        yield client, notifications_dsn


def _one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"expected one {what}, found {[s.name for s in found]}"
    return found[0]


def _trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def _ancestors(span_id: int, parents: dict[int, int]) -> list[int]:
    chain: list[int] = []
    while span_id in parents and len(chain) < 100:
        span_id = parents[span_id]
        chain.append(span_id)
    return chain


async def test_one_trace_runs_from_the_submission_to_the_receipt_email(
    services: tuple[httpx.AsyncClient, str],
    spans: InMemorySpanExporter,
    kafka_settings: KafkaSettings,
) -> None:
    client, notifications_dsn = services
    call = await client.post(
        "/calls",
        headers=AUTH,
        json={
            "title": {"en": "Trace test call"},
            "description": {"en": "Following one application."},
            "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "places": 1,
            "population_min": 1_000,
            "population_max": 100_000,
            "eligible_countries": ["EE"],
            "rubric": {
                "criteria": [{"key": "relevance", "weight": 1, "label": {"en": "Relevance"}}]
            },
            "reviews_required": 1,
        },
    )
    assert call.status_code == 201, call.text
    correlation = f"trace-{uuid.uuid4()}"
    contact = f"mari.{uuid.uuid4().hex[:8]}@example.org"
    submitted = await client.post(
        f"/calls/{call.json()['call_id']}/applications",
        headers={"X-Correlation-ID": correlation},
        json={
            "city_name": f"Haapsalu {uuid.uuid4().hex[:4]}",
            "place_kind": "city",
            "country": "EE",
            "population": 9_000,
            "organisation_name": "Haapsalu linn",
            "organisation_type": "municipality",
            "contacts": [{"name": "Mari", "email": contact, "language": "en", "role": "primary"}],
            "themes": ["culture_creative_industries"],
            "languages": ["et", "en"],
            "motivation": "The old town's culture.",
            "challenges": "Off-season.",
            "commitments": "A culture officer.",
        },
    )
    assert submitted.status_code == 201, submitted.text

    async def delivered() -> Any:
        conn = await connect(notifications_dsn)
        try:
            return await conn.fetchrow(
                "SELECT id, event_id, trace_id FROM deliveries WHERE correlation_id = $1"
                " AND recipient = $2 AND template = 'application_received' AND status = 'sent'",
                correlation,
                contact,
            )
        finally:
            await conn.close()

    delivery = await wait_for(delivered, within=60, what="the receipt e-mail's delivery record")
    event_id = delivery["event_id"]

    def ours() -> dict[str, ReadableSpan]:
        """This test's four spans, found by the ids it created (the exporter sees every
        span of the process)."""
        found: dict[str, ReadableSpan] = {}
        for span in spans.get_finished_spans():
            attrs = span.attributes or {}
            if span.kind is SpanKind.SERVER and attrs.get("pearls.correlation_id") == correlation:
                found.setdefault("server", span)
            elif span.kind is SpanKind.PRODUCER and attrs.get("messaging.message.id") == event_id:
                found["publish"] = span
            elif (
                span.kind is SpanKind.CONSUMER
                and attrs.get("messaging.message.id") == event_id
                and attrs.get("messaging.consumer.group.name", "").startswith(
                    "notifications-trace-"
                )
            ):
                found["consume"] = span
            elif span.name == "email deliver" and attrs.get("pearls.delivery_id") == str(
                delivery["id"]
            ):
                found["deliver"] = span
        return found

    async def all_four() -> dict[str, ReadableSpan] | None:
        found = ours()
        return found if len(found) == 4 else None

    found = await wait_for(all_four, within=30, what="the four spans of the submission")
    server, publish, consume, deliver = (
        found[k] for k in ("server", "publish", "consume", "deliver")
    )
    assert server.name.startswith("POST /calls/")
    trace_id = _trace_id(server)
    # Each step descends from the one before it (the publish from the request's spans;
    # FastAPI's own endpoint span may sit in between).
    parents = {
        s.context.span_id: s.parent.span_id
        for s in spans.get_finished_spans()
        if s.context is not None and s.parent is not None and _trace_id(s) == trace_id
    }
    assert server.context is not None and publish.context is not None
    assert server.context.span_id in _ancestors(publish.context.span_id, parents)
    assert consume.parent is not None and publish.context is not None
    assert consume.parent.span_id == publish.context.span_id
    assert deliver.parent is not None and consume.context is not None
    assert deliver.parent.span_id == consume.context.span_id
    # The delivery record keeps the trace id.
    assert delivery["trace_id"] == trace.format_trace_id(trace_id)
    # The record on the topic carries it in its traceparent header.
    records = [
        r
        for r in await read_topic(kafka_settings.bootstrap_servers, APPLICATIONS)
        if ("ce_id", event_id.encode()) in list(r.headers or ())
    ]
    [record] = records
    assert "traceparent" in dict(record.headers or ())
    carried = trace.get_current_span(extract_headers(list(record.headers or ()))).get_span_context()
    assert carried.trace_id == trace_id
    assert carried.span_id == publish.context.span_id
