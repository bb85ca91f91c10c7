"""The real awards app (with its lifespan) on a fresh database and the real broker.

Participants are announced as the applications and mentoring services announce
them: CloudEvents on their topics. Each test's app reads in a consumer group of
its own that starts at the topics' current end, so it sees only what the test
publishes (the broker is shared by the whole run).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pearls_awards.bootstrap import create_app
from pearls_awards.config import Settings
from pearls_shared.envelope import Envelope
from pearls_shared.events import applications as apps
from pearls_shared.events import mentoring as men
from pearls_shared.events.base import EventData
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import SeenEvent, read_topic, seen_event, start_group_at_end, wait_for
from pearls_shared.tokens import TokenEntry, hash_token
from pearls_shared.topics import APPLICATIONS, AWARDS, MENTORING

COORDINATOR = "awards-coordinator-token-0123456789"
THEMES = ("culture_creative_industries", "leisure_youth_social")


@dataclass
class Participant:
    """One participant's story so far, as events to publish."""

    accepted: apps.ApplicationAccepted
    milestones: tuple[Any, ...] = ()
    plan_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def id(self) -> uuid.UUID:
        return self.accepted.application_id


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    dsn: str
    kafka: KafkaSettings
    producer: AIOKafkaProducer
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    coordinator = {"Authorization": f"Bearer {COORDINATOR}"}

    async def publish(self, event: EventData) -> Envelope:
        envelope = envelope_for(event, correlation_id=f"test-{uuid.uuid4().hex[:8]}")
        await self.publish_envelope(event.topic, envelope)
        return envelope

    async def publish_envelope(self, topic: str, envelope: Envelope) -> None:
        await self.producer.send_and_wait(
            topic, key=envelope.subject.encode(), value=envelope.value(), headers=envelope.headers()
        )

    # -- participants' stories --------------------------------------------------

    def participant(
        self, city: str = "Kuldīga", country: str = "LV", **overrides: Any
    ) -> Participant:
        fields: dict[str, Any] = {
            "application_id": uuid.uuid4(),
            "call_id": uuid.uuid4(),
            "decided_at": datetime.now(UTC),
            "city_name": city,
            "country": country,
            "population": 12_000,
            "contacts": [
                {
                    "name": "Inese Kalniņa",
                    "email": f"contact.{uuid.uuid4().hex[:6]}.{self.tag}@example.org",
                    "language": "lv",
                    "role": "primary",
                }
            ],
            "themes": list(THEMES),
            "languages": ["lv", "en"],
            "from_waitlist": False,
        }
        fields.update(overrides)
        return Participant(apps.ApplicationAccepted.model_validate(fields))

    def approved(self, p: Participant, milestones: int = 2) -> men.PlanApproved:
        p.milestones = tuple(
            {
                "milestone_id": str(uuid.uuid4()),
                "title": f"Milestone {i + 1}",
                "due_date": (date.today() + timedelta(days=30 * (i + 1))).isoformat(),
            }
            for i in range(milestones)
        )
        return men.PlanApproved.model_validate(
            {
                "plan_id": p.plan_id,
                "participant_id": p.id,
                "revision": 1,
                "approved_at": datetime.now(UTC),
                "mentor": self.mentor_ref(),
                "city_name": p.accepted.city_name,
                "country": p.accepted.country,
                "contacts": p.accepted.contacts,
                "milestones": p.milestones,
            }
        )

    def reached(self, p: Participant, index: int) -> men.MilestoneReached:
        return men.MilestoneReached.model_validate(
            {
                "plan_id": p.plan_id,
                "participant_id": p.id,
                "milestone": p.milestones[index],
                "reached_at": datetime.now(UTC),
                "evidence_summary": f"Done with 40 volunteers ({index + 1}).",
                "milestones_reached": index + 1,
                "milestones_total": len(p.milestones),
                "city_name": p.accepted.city_name,
            }
        )

    def mentor_ref(self, email: str | None = None) -> dict[str, Any]:
        return {
            "mentor_id": str(uuid.uuid4()),
            "name": "Kadri Tamm",
            "email": email or f"mentor.{uuid.uuid4().hex[:6]}@example.org",
            "language": "et",
        }

    def assigned(self, p: Participant, mentor: dict[str, Any]) -> men.MentorAssigned:
        return men.MentorAssigned.model_validate(
            {
                "participant_id": p.id,
                "mentor": mentor,
                "assigned_at": datetime.now(UTC),
                "city_name": p.accepted.city_name,
                "country": p.accepted.country,
                "contacts": p.accepted.contacts,
                "explanation": {
                    "summary": "Shares English.",
                    "shared_languages": ["en"],
                    "shared_themes": [],
                    "cross_border": True,
                },
                "overridden_by_coordinator": False,
            }
        )

    async def eligible(self, p: Participant, reached: int = 2) -> None:
        """Accepted, plan approved, ``reached`` milestones reached; waits until the view has it."""
        await self.publish(p.accepted)
        await self.publish(self.approved(p))
        for i in range(reached):
            await self.publish(self.reached(p, i))
        await self.view(p.id, lambda v: v["milestones_reached"] == reached)

    async def view(self, participant_id: uuid.UUID, ready: Any = None) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            r = await self.client.get(f"/participants/{participant_id}", headers=self.coordinator)
            if r.status_code != 200:
                return None
            data: dict[str, Any] = r.json()
            return data if ready is None or ready(data) else None

        result: dict[str, Any] = await wait_for(check, within=30, what=f"view of {participant_id}")
        return result

    # -- rounds -----------------------------------------------------------------

    def round_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": {"en": "BSR Cultural Pearls Award 2026"},
            "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            "criteria": [
                {"criterion_id": "impact", "name": {"en": "Impact"}, "weight": 2},
                {"criterion_id": "community", "name": {"en": "Community"}, "weight": 1},
            ],
            "eligibility": {"plan_approved_required": True, "min_milestone_share": 0.5},
            "awards_count": 3,
            "tight_margin": 2.0,
            "jurors": [
                {
                    "name": "Anna Berg",
                    "email": f"anna.{self.tag}@jury.example",
                    "language": "sv",
                    "city_name": "Lund",
                    "country": "SE",
                },
                {
                    "name": "Lars Holm",
                    "email": f"lars.{self.tag}@jury.example",
                    "language": "da",
                    "city_name": "Odense",
                    "country": "DK",
                },
            ],
        }
        body.update(overrides)
        return body

    async def open_round(self, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/rounds", json=self.round_body(**overrides), headers=self.coordinator
        )
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def nominees(self, round_id: str) -> set[str]:
        r = await self.client.get(f"/rounds/{round_id}/nominees", headers=self.coordinator)
        assert r.status_code == 200, r.text
        return {n["participant_id"] for n in r.json()}

    async def events_about(self, ids: Iterable[uuid.UUID | str]) -> list[SeenEvent]:
        wanted = {str(i) for i in ids}
        records = await read_topic(self.kafka.bootstrap_servers, AWARDS)
        return [e for e in map(seen_event, records) if e is not None and e.subject in wanted]

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


def make_settings(dsn: str, group: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "coordinators": [TokenEntry(id="anna", token_sha256=hash_token(COORDINATOR).hex())],
        "consumer_group": group,
        "public_base_url": "http://awards.test",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def service(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[Service]:
    dsn = postgres_server.new_database("awards")
    group = f"awards-test-{uuid.uuid4()}"
    await start_group_at_end(kafka_settings.bootstrap_servers, group, (APPLICATIONS, MENTORING))
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
                transport=transport, base_url="http://awards.test"
            ) as client:
                yield Service(app, client, dsn, kafka_settings, producer)
    finally:
        await producer.stop()
