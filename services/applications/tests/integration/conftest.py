"""The real applications app (with its lifespan) on a fresh database and the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pearls_applications.bootstrap import create_app
from pearls_applications.config import CoordinatorEntry, ReviewerEntry, Settings
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import SeenEvent, read_topic, seen_event, wait_for
from pearls_shared.tokens import hash_token
from pearls_shared.topics import APPLICATIONS

COORDINATOR = "coordinator-token-0123456789"
# Reviewers configured with their home towns: conflict rules depend on them.
REVIEWERS = {
    "rev-kaunas": ("Rūta Petrauskienė", "Kaunas", "LT", "reviewer-kaunas-token-0123"),
    "rev-tartu": ("Mart Tamm", "Tartu", "EE", "reviewer-tartu-token-01234"),
    "rev-gdansk": ("Anna Nowak", "Gdańsk", "PL", "reviewer-gdansk-token-0123"),
}


def reviewer_token(reviewer_id: str) -> str:
    return REVIEWERS[reviewer_id][3]


def make_settings(dsn: str) -> Settings:
    return Settings(
        database_url=dsn,
        coordinators=[
            # One configured by its hash, as in production …
            CoordinatorEntry(id="anna", token_sha256=hash_token(COORDINATOR).hex()),
            # … one by a plain token, hashed when the settings load.
            CoordinatorEntry.model_validate({"id": "jonas", "token": "second-coordinator-tok"}),
        ],
        reviewers=[
            ReviewerEntry(id=rid, name=n, city_name=c, country=cc, token_sha256=hash_token(t).hex())
            for rid, (n, c, cc, t) in REVIEWERS.items()
        ],
        scheduler_interval_s=0.2,
    )


def call_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "title": {"en": "Cultural Pearls 2026", "de": "Kulturperlen 2026"},
        "description": {"en": "Learning and mentoring for smaller cities."},
        "closes_at": (now + timedelta(days=30)).isoformat(),
        "places": 2,
        "population_min": 5_000,
        "population_max": 200_000,
        "rubric": {
            "scale_min": 1,
            "scale_max": 5,
            "criteria": [
                {"key": "relevance", "label": {"en": "Relevance"}, "weight": 2},
                {"key": "commitment", "label": {"en": "Commitment"}, "weight": 1},
            ],
        },
        "reviews_required": 2,
    }
    body.update(overrides)
    return body


def application_body(
    city: str = "Kuldīga", country: str = "LV", population: int = 10_800, **overrides: Any
) -> dict[str, Any]:
    slug = uuid.uuid4().hex[:6]
    body: dict[str, Any] = {
        "city_name": city,
        "place_kind": "city",
        "country": country,
        "population": population,
        "organisation_name": f"{city} Municipality",
        "organisation_type": "municipality",
        "contacts": [
            {
                "name": "Inese Bērziņa",
                "email": f"inese.{slug}@example.org",
                "language": "lv",
                "role": "primary",
            },
            {
                "name": "Jānis Ozols",
                "email": f"janis.{slug}@example.org",
                "language": "en",
                "role": "backup",
            },
        ],
        "themes": ["culture_creative_industries", "leisure_youth_social"],
        "languages": ["lv", "en"],
        "motivation": "Our old town lives from culture and wants to keep its young people.",
        "challenges": "Young people leave; the cultural centre needs new programmes.",
        "commitments": "A culture officer half time and a budget for co-learning visits.",
    }
    body.update(overrides)
    return body


async def create_call(svc: Service, **overrides: Any) -> dict[str, Any]:
    response = await svc.client.post(
        "/calls", json=call_body(**overrides), headers=svc.as_coordinator()
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def submit(svc: Service, call_id: str, **kwargs: Any) -> dict[str, Any]:
    response = await svc.client.post(
        f"/calls/{call_id}/applications", json=application_body(**kwargs)
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def events_about(svc: Service, ids: Iterable[str]) -> list[SeenEvent]:
    wanted = set(ids)
    records = await read_topic(svc.bootstrap, APPLICATIONS)
    found = [e for e in map(seen_event, records) if e is not None]
    return sorted(
        (e for e in found if e.subject in wanted),
        key=lambda e: e.data.get("submitted_at") or e.data.get("decided_at") or "",
    )


async def wait_for_events(
    svc: Service, ids: Iterable[str], types: list[str], *, what: str = "events"
) -> list[SeenEvent]:
    """Wait until every type in ``types`` has arrived (as a multiset) for ``ids``."""
    wanted = list(ids)

    async def arrived() -> list[SeenEvent] | None:
        events = await events_about(svc, wanted)
        have = [e.type for e in events]
        return events if all(have.count(t) >= types.count(t) for t in set(types)) else None

    result: list[SeenEvent] = await wait_for(arrived, within=60, what=what)
    return result


async def close(svc: Service, call_id: str) -> None:
    response = await svc.client.post(f"/calls/{call_id}/close", headers=svc.as_coordinator())
    assert response.status_code == 200, response.text


@dataclass
class Service:
    """The running app, its client, its database and the broker; helpers as methods."""

    app: FastAPI
    client: httpx.AsyncClient
    dsn: str
    bootstrap: str

    coordinator = {"Authorization": f"Bearer {COORDINATOR}"}
    call_body = staticmethod(call_body)
    application_body = staticmethod(application_body)
    reviewer_token = staticmethod(reviewer_token)

    def as_coordinator(self) -> dict[str, str]:
        return dict(self.coordinator)

    def as_reviewer(self, reviewer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {reviewer_token(reviewer_id)}"}

    async def create_call(self, **overrides: Any) -> dict[str, Any]:
        return await create_call(self, **overrides)

    async def submit(self, call_id: str, **kwargs: Any) -> dict[str, Any]:
        return await submit(self, call_id, **kwargs)

    async def close(self, call_id: str) -> None:
        await close(self, call_id)

    async def events_about(self, ids: Iterable[str]) -> list[SeenEvent]:
        return await events_about(self, ids)

    async def wait_for_events(self, ids: Iterable[str], types: list[str]) -> list[SeenEvent]:
        return await wait_for_events(self, ids, types)


@pytest.fixture
async def service(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[Service]:
    dsn = postgres_server.new_database("applications")
    app = create_app(
        make_settings(dsn),
        kafka=kafka_settings,
        delivery=DeliverySettings(relay_poll_interval_s=0.2),
    )
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://applications") as client:
            yield Service(app, client, dsn, kafka_settings.bootstrap_servers)
