"""The real mentoring app (with its lifespan) on a fresh database and the real broker.

Each test's app reads pearls.applications.v1 in a consumer group of its own that
starts at the topic's current end, so it sees only the participants the test
itself announces (the broker is shared by the whole run).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pearls_mentoring.bootstrap import create_app
from pearls_mentoring.config import Settings
from pearls_shared.envelope import Envelope
from pearls_shared.events.applications import ApplicationAccepted, ApplicationWithdrawn
from pearls_shared.events.base import EventData
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import SeenEvent, read_topic, seen_event, start_group_at_end, wait_for
from pearls_shared.tokens import TokenEntry, hash_token
from pearls_shared.topics import APPLICATIONS, MENTORING

COORDINATOR = "mentoring-coordinator-token-0123"
THEMES = ("culture_creative_industries", "leisure_youth_social")


@dataclass
class Service:
    """The running app, its client, database and broker; helpers as methods."""

    app: FastAPI
    client: httpx.AsyncClient
    dsn: str
    bootstrap: str
    producer: AIOKafkaProducer
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    coordinator = {"Authorization": f"Bearer {COORDINATOR}"}

    # -- announcing participants as the applications service does -------------

    async def publish(self, event: EventData, *, correlation_id: str | None = None) -> Envelope:
        envelope = envelope_for(event, correlation_id=correlation_id or str(uuid.uuid4()))
        await self.publish_envelope(event.topic, envelope)
        return envelope

    async def publish_envelope(self, topic: str, envelope: Envelope) -> None:
        await self.producer.send_and_wait(
            topic,
            key=envelope.subject.encode(),
            value=envelope.value(),
            headers=envelope.headers(),
        )

    def accepted(
        self,
        city: str = "Kuldīga",
        country: str = "LV",
        languages: Iterable[str] = ("lv", "en"),
        themes: Iterable[str] = THEMES,
        token: str | None = None,
        **overrides: Any,
    ) -> ApplicationAccepted:
        slug = uuid.uuid4().hex[:6]
        fields: dict[str, Any] = {
            "application_id": uuid.uuid4(),
            "call_id": uuid.uuid4(),
            "decided_at": datetime.now(UTC),
            "city_name": city,
            "country": country,
            "population": 10_500,
            "contacts": [
                {
                    "name": "Inese Kalniņa",
                    "email": f"inese.{slug}.{self.tag}@example.org",
                    "language": "lv",
                    "role": "primary",
                }
            ],
            "themes": list(themes),
            "languages": list(languages),
            "from_waitlist": False,
            "applicant_token_sha256": hash_token(token).hex() if token else None,
        }
        fields.update(overrides)
        return ApplicationAccepted.model_validate(fields)

    def withdrawn(self, accepted: ApplicationAccepted, **overrides: Any) -> ApplicationWithdrawn:
        fields: dict[str, Any] = {
            "application_id": accepted.application_id,
            "call_id": accepted.call_id,
            "withdrawn_at": datetime.now(UTC),
            "previous_status": "accepted",
            "city_name": accepted.city_name,
            "country": accepted.country,
            "contacts": accepted.contacts,
            "reason": "The council changed its priorities.",
        }
        fields.update(overrides)
        return ApplicationWithdrawn.model_validate(fields)

    async def participant_row(self, participant_id: uuid.UUID) -> dict[str, Any] | None:
        conn = await asyncpg.connect(self.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT * FROM participants WHERE participant_id = $1", participant_id
            )
        finally:
            await conn.close()
        return dict(row) if row else None

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def join(self, token: str | None = None, **kwargs: Any) -> ApplicationAccepted:
        """Announce an accepted participant and wait until the service knows it."""
        event = self.accepted(token=token, **kwargs)
        await self.publish(event)
        await wait_for(
            lambda: self.participant_row(event.application_id),
            within=30,
            what=f"participant {event.application_id}",
        )
        return event

    # -- the HTTP API ----------------------------------------------------------

    async def register_mentor(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "national_expert",
            "name": "Kadri Tamm",
            "email": f"mentor.{uuid.uuid4().hex[:8]}.{self.tag}@example.org",
            "language": "et",
            "languages": ["et", "en"],
            "country": "EE",
            "capacity": 3,
            "themes": list(THEMES),
        }
        body.update(overrides)
        response = await self.client.post("/mentors", json=body, headers=self.coordinator)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def participant(self, participant_id: uuid.UUID) -> dict[str, Any]:
        response = await self.client.get(
            f"/participants/{participant_id}", headers=self.coordinator
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def matched(self, participant_id: uuid.UUID) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            response = await self.client.get(
                f"/participants/{participant_id}", headers=self.coordinator
            )
            if response.status_code == 404:
                return None  # not read from the topic yet
            p: dict[str, Any] = response.json()
            return p if p["status"] == "matched" else None

        result: dict[str, Any] = await wait_for(check, within=30, what="a mentor assignment")
        return result

    # -- events on pearls.mentoring.v1 ------------------------------------------

    async def events_about(self, ids: Iterable[uuid.UUID | str]) -> list[SeenEvent]:
        wanted = {str(i) for i in ids}
        records = await read_topic(self.bootstrap, MENTORING)
        return [e for e in map(seen_event, records) if e is not None and e.subject in wanted]

    async def wait_for_events(
        self, ids: Iterable[uuid.UUID | str], types: list[str]
    ) -> list[SeenEvent]:
        wanted = list(ids)

        async def arrived() -> list[SeenEvent] | None:
            events = await self.events_about(wanted)
            have = [e.type for e in events]
            return events if all(have.count(t) >= types.count(t) for t in set(types)) else None

        result: list[SeenEvent] = await wait_for(arrived, within=60, what=f"events {types}")
        return result


def make_settings(dsn: str, group: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "coordinators": [TokenEntry(id="anna", token_sha256=hash_token(COORDINATOR).hex())],
        "consumer_group": group,
        "matching_interval_s": 0.2,
        "overdue_interval_s": 3600,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def service(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[Service]:
    dsn = postgres_server.new_database("mentoring")
    group = f"mentoring-test-{uuid.uuid4()}"
    await start_group_at_end(kafka_settings.bootstrap_servers, group, [APPLICATIONS])
    app = create_app(
        make_settings(dsn, group),
        kafka=kafka_settings,
        delivery=DeliverySettings(relay_poll_interval_s=0.2),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://mentoring"
            ) as client:
                yield Service(app, client, dsn, kafka_settings.bootstrap_servers, producer)
    finally:
        await producer.stop()
