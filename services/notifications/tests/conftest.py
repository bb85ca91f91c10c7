"""Fixtures for the notifications tests: a controllable SMTP server on loopback,
settings for a fresh database, the service in-process, and event publishing.

The SMTP server is aiosmtpd on a free port. Tests can tell it to refuse given
recipients with any reply (451 temporary, 550 permanent), stop and restart it
on the same port, or hold messages mid-DATA (to kill the service while e-mails
are in flight).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from pearls_notifications.bootstrap import create_app
from pearls_notifications.config import Settings
from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS
from pearls_shared.db import connect
from pearls_shared.envelope import Envelope
from pearls_shared.events.base import EventData
from pearls_shared.events.registry import model_for
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import start_group_at_end

API_TOKEN = "test-coordinator-token"
API_TOKEN_SHA256 = __import__("hashlib").sha256(API_TOKEN.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    rcpt: str
    raw: bytes

    def message(self) -> EmailMessage:
        parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[assignment]
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message()["Message-ID"])


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> full reply, e.g. "550 no"
    # Hold the n-th DATA (1-based) and every later one until released, storing none of
    # them: with several sender workers, none gets past the n-th while the test acts.
    hold_at: int | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    data_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_count += 1
            n = self.data_count
        if self.hold_at is not None and n >= self.hold_at and not self.release.is_set():
            self.holding.set()
            await asyncio.to_thread(self.release.wait)  # the SMTP thread's loop, not ours
            return "451 held and dropped by the test"
        raw = envelope.original_content
        for rcpt in envelope.rcpt_tos:
            self.received.append(Received(rcpt.lower(), raw))
        return "250 OK stored"


class SmtpSink:
    """A real SMTP server on loopback that tests can break and repair."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SinkHandler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.handler.received if r.rcpt == address.lower()]

    def tagged(self, tag: str) -> list[Received]:
        return [r for r in self.handler.received if tag in r.rcpt]

    def counts(self, tag: str) -> Counter[tuple[str, str]]:
        """(recipient, Message-ID) -> how many times it arrived."""
        return Counter((r.rcpt, r.message_id) for r in self.tagged(tag))


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.handler.release.set()
    sink.stop()


@pytest.fixture
def tag() -> str:
    """Marks this test's recipients (plus-addressing), so foreign mail is ignored."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def settings_for(postgres_server: Any, smtp_sink: SmtpSink, tag: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": postgres_server.new_database("ntf"),
            "consumer_group": f"notifications-test-{uuid.uuid4()}",
            "not_before": datetime.now(UTC) - timedelta(seconds=5),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_sink.port,
            "smtp_timeout_s": 5.0,
            "rate_limit_per_minute": 60_000.0,
            "retry_backoff_initial_s": 0.2,
            "retry_backoff_max_s": 1.0,
            "retry_max_attempts": 1000,
            "sender_idle_poll_s": 0.2,
            # Untagged: other engineers' call.closed events on the shared broker reach
            # this mailbox too; a test that checks coordinator mail tags it itself.
            "coordinator_email": "coordinators@pearls.example",
            "unsubscribe_secret": "test-secret",
            "public_base_url": "http://notifications.test",
            "coordinators": [{"id": "test-coordinator", "token_sha256": API_TOKEN_SHA256}],
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class Service:
    settings: Settings
    app: Any
    client: httpx.AsyncClient

    @property
    def dsn(self) -> str:
        return self.settings.database_url.get_secret_value()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        conn = await connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
async def start_service(
    settings_for: Callable[..., Settings], kafka_settings: KafkaSettings
) -> AsyncIterator[Callable[..., Any]]:
    """Start the whole service in-process (consumers, relay, sender, HTTP app)."""
    managers: list[tuple[LifespanManager, httpx.AsyncClient]] = []
    started_groups: set[str] = set()

    async def start(**overrides: Any) -> Service:
        settings = settings_for(**overrides)
        if settings.consumer_group not in started_groups:
            # A new group starts at the topics' end: after a long run the topics hold
            # thousands of other tests' events, which would otherwise come first.
            await start_group_at_end(
                kafka_settings.bootstrap_servers, settings.consumer_group, CONSUMED_TOPICS
            )
            started_groups.add(settings.consumer_group)
        app = create_app(settings, kafka_settings)
        manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
        await manager.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://notifications.test"
        )
        managers.append((manager, client))
        return Service(settings, app, client)

    yield start
    for manager, client in reversed(managers):
        await client.aclose()
        await manager.__aexit__(None, None, None)


_EMAIL = re.compile(r"^([^@\s]+)@([^@\s]+\.[^@\s]+)$")


def _personalize(event: EventData, tag: str, **updates: Any) -> EventData:
    """The event with every e-mail address plus-tagged and the aggregate id made unique.

    Each call gets its own addresses (tag + a per-call suffix), so two events of
    one test never share a recipient unless the test says so.
    """
    suffix = f"{tag}x{uuid.uuid4().hex[:6]}"

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            m = _EMAIL.match(value)
            if m:
                return f"{m.group(1)}+{suffix}@{m.group(2)}"
        return value

    data = walk(event.to_data())
    data[event.key_field] = (
        str(uuid.uuid4()) if event.key_field.endswith("_id") else data[event.key_field]
    )
    data.update(updates)
    return model_for(event.event_type).model_validate(data)


@pytest.fixture
def personalize(tag: str) -> Callable[..., EventData]:
    """``personalize(event, **updates)``: this test's copy of a sample event."""

    def make(event: EventData, **updates: Any) -> EventData:
        return _personalize(event, tag, **updates)

    return make


class Publisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, event: EventData, *, envelope: Envelope | None = None) -> Envelope:
        env = envelope or envelope_for(event, correlation_id=f"test-{uuid.uuid4()}")
        await self.producer.send_and_wait(
            event.topic, key=env.subject.encode(), value=env.value(), headers=env.headers()
        )
        return env


@pytest.fixture
async def publisher(kafka_bootstrap_servers: str, contract_topics: Any) -> AsyncIterator[Publisher]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    yield Publisher(producer)
    await producer.stop()
