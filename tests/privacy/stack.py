"""The four services in-process on real Kafka and PostgreSQL, with an SMTP sink, for the
tests that follow a person through every service (contacts changes, erasure).

Each service gets a fresh database; the consuming services get fresh consumer groups
that start at the topics' end, so they see only what this test publishes. Every
address a test uses carries its tag, and every query filters by it or by the ids the
test created.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from pearls_shared.db import connect
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import start_group_at_end
from pearls_shared.tokens import TokenEntry
from pearls_shared.topics import APPLICATIONS, MENTORING

COORDINATOR = "privacy-coordinator-token-0123456789"
AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
DELIVERY = DeliverySettings(relay_poll_interval_s=0.2)
SERVICES = ("applications", "mentoring", "awards", "notifications")
# The tables of the erasure registers and the delivery plumbing (ids, hashes only).
_PLUMBING = ("inbox", "erased_addresses", "erased_applications", "schema_migrations")


@dataclass
class Mail:
    rcpt: str
    raw: bytes

    def message(self) -> EmailMessage:
        parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[assignment]
        return parsed


@dataclass
class _Sink:
    received: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append(Mail(rcpt.lower(), envelope.original_content))
        return "250 OK stored"


class SmtpSink:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.handler = _Sink()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def to(self, address: str) -> list[Mail]:
        with self.handler.lock:
            return [m for m in self.handler.received if m.rcpt == address.lower()]


@dataclass
class Stack:
    clients: dict[str, httpx.AsyncClient]
    dsns: dict[str, str]
    sink: SmtpSink

    async def fetch(self, service: str, sql: str, *args: Any) -> list[Any]:
        conn = await connect(self.dsns[service])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def rows_mentioning(self, service: str, text: str) -> list[tuple[str, str, str]]:
        """(table, column, value) of every text, JSON and text-array column value of the
        service's tables that contains ``text`` (any case), found through
        information_schema; plus outbox payloads and keys (bytes, decoded)."""
        conn = await connect(self.dsns[service])
        try:
            columns = await conn.fetch(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
                " AND t.table_name = c.table_name"
                " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
                " AND (c.data_type IN ('text', 'character varying', 'character', 'json',"
                " 'jsonb', 'ARRAY', 'USER-DEFINED'))"
            )
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found: list[tuple[str, str, str]] = []
            for col in columns:
                table = '"' + col["table_name"] + '"'
                column = '"' + col["column_name"] + '"'
                rows = await conn.fetch(
                    f"SELECT {column}::text AS v FROM {table} WHERE {column}::text ILIKE $1",
                    pattern,
                )
                found += [(col["table_name"], col["column_name"], r["v"]) for r in rows]
            rows = await conn.fetch(
                "SELECT convert_from(payload, 'UTF8') AS v FROM outbox"
                " WHERE convert_from(payload, 'UTF8') ILIKE $1"
                " OR convert_from(message_key, 'UTF8') ILIKE $1",
                pattern,
            )
            found += [("outbox", "payload", r["v"]) for r in rows]
            return found
        finally:
            await conn.close()

    async def fingerprint(self, service: str, needle: str) -> list[str]:
        """Every row (as text) of the service's own tables that mentions ``needle``
        (this test's tag or ids), plumbing tables left out; sorted, for comparison."""
        conn = await connect(self.dsns[service])
        try:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
            rows: list[str] = []
            for t in tables:
                name = t["table_name"]
                if name in _PLUMBING or name == "outbox":
                    continue
                found = await conn.fetch(
                    f'SELECT r::text AS v FROM "{name}" r WHERE r::text ILIKE $1',
                    f"%{needle}%",
                )
                rows += [f"{name}: {r['v']}" for r in found]
            return sorted(rows)
        finally:
            await conn.close()

    async def handled(self, service: str, event_id: str) -> bool:
        rows = await self.fetch(service, "SELECT 1 FROM inbox WHERE event_id = $1", event_id)
        return bool(rows)


async def _fresh_group(kafka: KafkaSettings, prefix: str, topics: list[str]) -> str:
    group = f"{prefix}-{uuid.uuid4()}"
    await start_group_at_end(kafka.bootstrap_servers, group, topics)
    return group


@asynccontextmanager
async def running_stack(postgres_server: Any, kafka: KafkaSettings) -> AsyncIterator[Stack]:
    from pearls_applications.bootstrap import create_app as applications_app
    from pearls_applications.config import CoordinatorEntry
    from pearls_applications.config import Settings as ApplicationsSettings
    from pearls_awards.bootstrap import create_app as awards_app
    from pearls_awards.config import Settings as AwardsSettings
    from pearls_mentoring.bootstrap import create_app as mentoring_app
    from pearls_mentoring.config import Settings as MentoringSettings
    from pearls_notifications.bootstrap import create_app as notifications_app
    from pearls_notifications.config import Settings as NotificationsSettings
    from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS

    coordinators = [{"id": "anna", "token": COORDINATOR}]
    dsns = {name: postgres_server.new_database(f"priv_{name[:4]}") for name in SERVICES}
    sink = SmtpSink()
    sink.controller.start()
    apps = {
        "applications": applications_app(
            ApplicationsSettings(
                database_url=dsns["applications"],
                coordinators=[CoordinatorEntry.model_validate(c) for c in coordinators],
            ),
            kafka=kafka,
            delivery=DELIVERY,
        ),
        "mentoring": mentoring_app(
            MentoringSettings(
                database_url=dsns["mentoring"],
                coordinators=[TokenEntry.model_validate(c) for c in coordinators],
                consumer_group=await _fresh_group(kafka, "mentoring-privacy", [APPLICATIONS]),
                matching_interval_s=0.2,
            ),
            kafka=kafka,
            delivery=DELIVERY,
        ),
        "awards": awards_app(
            AwardsSettings(
                database_url=dsns["awards"],
                coordinators=[TokenEntry.model_validate(c) for c in coordinators],
                consumer_group=await _fresh_group(
                    kafka, "awards-privacy", [APPLICATIONS, MENTORING]
                ),
            ),
            kafka=kafka,
            delivery=DELIVERY,
        ),
        "notifications": notifications_app(
            NotificationsSettings(
                database_url=dsns["notifications"],
                consumer_group=await _fresh_group(
                    kafka, "notifications-privacy", list(CONSUMED_TOPICS)
                ),
                not_before=datetime.now(UTC) - timedelta(seconds=5),
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                smtp_timeout_s=5.0,
                rate_limit_per_minute=60_000.0,
                retry_backoff_initial_s=0.2,
                retry_backoff_max_s=1.0,
                sender_idle_poll_s=0.2,
                coordinator_email="coordinators@pearls.example",
                unsubscribe_secret="privacy-test-secret",
                public_base_url="http://notifications.test",
                coordinators=coordinators,
            ),
            kafka,
        ),
    }
    try:
        async with AsyncExitStack() as stack:
            clients: dict[str, httpx.AsyncClient] = {}
            for name, app in apps.items():
                manager = await stack.enter_async_context(
                    LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
                )
                clients[name] = await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=manager.app), base_url=f"http://{name}"
                    )
                )
            yield Stack(clients, dsns, sink)
    finally:
        sink.controller.stop()


# --- the story every test plays -------------------------------------------------------


def contact(name: str, email: str, role: str = "primary", language: str = "en") -> dict[str, str]:
    return {"name": name, "email": email, "language": language, "role": role}


async def open_call(stack: Stack, country: str = "IS") -> str:
    call = await stack.clients["applications"].post(
        "/calls",
        headers=AUTH,
        json={
            "title": {"en": "Privacy test call"},
            "description": {"en": "Culture by the sea."},
            "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "places": 5,
            "population_min": 1_000,
            "population_max": 100_000,
            "eligible_countries": [country],
            "rubric": {
                "criteria": [{"key": "relevance", "weight": 1, "label": {"en": "Relevance"}}]
            },
            "reviews_required": 1,
        },
    )
    assert call.status_code == 201, call.text
    call_id: str = call.json()["call_id"]
    return call_id


async def submit(
    stack: Stack, call_id: str, city: str, contacts: list[dict[str, str]], country: str = "IS"
) -> tuple[str, str]:
    """(application id, applicant token)."""
    submitted = await stack.clients["applications"].post(
        f"/calls/{call_id}/applications",
        json={
            "city_name": city,
            "place_kind": "city",
            "country": country,
            "population": 3_000,
            "organisation_name": f"{city} Municipality",
            "organisation_type": "municipality",
            "contacts": contacts,
            "themes": ["culture_creative_industries"],
            "languages": ["is"],
            "motivation": "Art keeps the fjord alive.",
            "challenges": "Winter and distance.",
            "commitments": "A culture officer.",
        },
    )
    assert submitted.status_code == 201, submitted.text
    body = submitted.json()
    return body["application_id"], body["applicant_token"]


async def close_and_decide(stack: Stack, call_id: str, decisions: dict[str, str]) -> None:
    apps = stack.clients["applications"]
    closed = await apps.post(f"/calls/{call_id}/close", headers=AUTH)
    assert closed.status_code == 200, closed.text
    for application_id, decision in decisions.items():
        body: dict[str, str] = {"decision": decision}
        if decision == "reject":
            body |= {"reason_code": "not_selected", "reason": "The places went elsewhere."}
        decided = await apps.post(
            f"/applications/{application_id}/decision", headers=AUTH, json=body
        )
        assert decided.status_code == 200, decided.text


async def register_mentor(stack: Stack, email: str, language: str = "is") -> str:
    mentor = await stack.clients["mentoring"].post(
        "/mentors",
        headers=AUTH,
        json={
            "kind": "national_expert",
            "name": "Guðrún Jónsdóttir",
            "email": email,
            "language": language,
            "languages": [language],
            "country": "NO",
            "capacity": 5,
            "themes": ["culture_creative_industries"],
        },
    )
    assert mentor.status_code == 201, mentor.text
    mentor_id: str = mentor.json()["mentor_id"]
    return mentor_id
