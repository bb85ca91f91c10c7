"""From one service to the next: an acceptance by the applications service's own code
becomes a participant with a mentor, and the applicant's token opens its plan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pearls_applications.bootstrap import create_app as applications_app
from pearls_applications.config import CoordinatorEntry
from pearls_applications.config import Settings as ApplicationsSettings
from pearls_mentoring.bootstrap import create_app as mentoring_app
from pearls_mentoring.config import Settings as MentoringSettings
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import read_topic, start_group_at_end, wait_for
from pearls_shared.tokens import TokenEntry
from pearls_shared.topics import APPLICATIONS, MENTORING

pytestmark = pytest.mark.integration

COORDINATOR = "flow-coordinator-token-0123456789"
AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
DELIVERY = DeliverySettings(relay_poll_interval_s=0.2)


@pytest.fixture
async def clients(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    applications = applications_app(
        ApplicationsSettings(
            database_url=postgres_server.new_database("flow_apps"),
            coordinators=[CoordinatorEntry.model_validate({"id": "anna", "token": COORDINATOR})],
        ),
        kafka=kafka_settings,
        delivery=DELIVERY,
    )
    group = f"mentoring-flow-{uuid.uuid4()}"
    # From the topic's end: this test's acceptance, not every earlier test's participants.
    await start_group_at_end(kafka_settings.bootstrap_servers, group, [APPLICATIONS])
    mentoring = mentoring_app(
        MentoringSettings(
            database_url=postgres_server.new_database("flow_mentoring"),
            coordinators=[TokenEntry.model_validate({"id": "anna", "token": COORDINATOR})],
            consumer_group=group,
            matching_interval_s=0.2,
        ),
        kafka=kafka_settings,
        delivery=DELIVERY,
    )
    async with (
        LifespanManager(applications, startup_timeout=60) as apps,
        LifespanManager(mentoring, startup_timeout=60) as ment,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps.app), base_url="http://applications"
        ) as a,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ment.app), base_url="http://mentoring"
        ) as m,
    ):
        yield a, m


async def test_an_accepted_application_gets_a_mentor_and_its_token_opens_the_plan(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], kafka_settings: KafkaSettings
) -> None:
    applications, mentoring = clients
    # A mentor who speaks a language of this test's city only, so no other test's
    # participants (read from the shared topic) compete for the place.
    language = "is"
    mentor = await mentoring.post(
        "/mentors",
        headers=AUTH,
        json={
            "kind": "national_expert",
            "name": "Guðrún Jónsdóttir",
            "email": f"gudrun.{uuid.uuid4().hex[:6]}@example.org",
            "language": language,
            "languages": [language],
            "country": "IS",
            "capacity": 5,
            "themes": ["culture_creative_industries"],
        },
    )
    assert mentor.status_code == 201, mentor.text
    call = await applications.post(
        "/calls",
        headers=AUTH,
        json={
            "title": {"en": "Flow test call"},
            "description": {"en": "Culture in the fjords."},
            "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "places": 1,
            "population_min": 1_000,
            "population_max": 100_000,
            "eligible_countries": ["IS", "NO"],
            "rubric": {
                "criteria": [{"key": "relevance", "weight": 1, "label": {"en": "Relevance"}}]
            },
            "reviews_required": 1,
        },
    )
    assert call.status_code == 201, call.text
    city = f"Seyðisfjörður {uuid.uuid4().hex[:4]}"
    submitted = await applications.post(
        f"/calls/{call.json()['call_id']}/applications",
        headers={"X-Correlation-ID": "flow-submission"},
        json={
            "city_name": city,
            "place_kind": "city",
            "country": "IS",
            "population": 3_000,
            "organisation_name": "Múlaþing",
            "organisation_type": "municipality",
            "contacts": [
                {
                    "name": "Sigrún",
                    "email": f"sigrun.{uuid.uuid4().hex[:6]}@example.org",
                    "language": "is",
                    "role": "primary",
                }
            ],
            "themes": ["culture_creative_industries"],
            "languages": ["is"],
            "motivation": "Art keeps the fjord alive.",
            "challenges": "Winter and distance.",
            "commitments": "A culture officer.",
        },
    )
    assert submitted.status_code == 201, submitted.text
    application_id = submitted.json()["application_id"]
    token = submitted.json()["applicant_token"]
    assert (
        await applications.post(f"/calls/{call.json()['call_id']}/close", headers=AUTH)
    ).is_success
    decided = await applications.post(
        f"/applications/{application_id}/decision",
        headers={**AUTH, "X-Correlation-ID": "flow-decision"},
        json={"decision": "accept"},
    )
    assert decided.status_code == 200, decided.text

    async def matched() -> dict[str, Any] | None:
        response = await mentoring.get(f"/participants/{application_id}", headers=AUTH)
        if response.status_code != 200 or response.json()["status"] != "matched":
            return None
        data: dict[str, Any] = response.json()
        return data

    participant = await wait_for(matched, within=60, what="the participant's mentor")
    assert participant["mentor"]["mentor_id"] == mentor.json()["mentor_id"]
    assert participant["city_name"] == city

    async def assigned() -> Any:
        records = await read_topic(kafka_settings.bootstrap_servers, MENTORING)
        return [
            r
            for r in records
            if r.key == application_id.encode()
            and ("ce_type", b"pearls.mentor.assigned") in list(r.headers)
        ]

    [record] = await wait_for(assigned, within=30, what="pearls.mentor.assigned")
    headers = dict(record.headers)
    # The correlation id of the decision travels on into the match it caused.
    assert headers["ce_correlationid"] == b"flow-decision"

    # The applicant token from the applications service opens the participant's own plan.
    own = await mentoring.get(
        f"/participants/{application_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert own.status_code == 200
    plan = await mentoring.put(
        f"/participants/{application_id}/plan",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "title": "Art in the fjord",
            "language": "en",
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "goals": ["A winter arts festival"],
            "milestones": [{"title": "Festival programme", "due_date": "2027-06-01"}],
        },
    )
    assert plan.status_code == 200, plan.text
    wrong = await mentoring.get(
        f"/participants/{application_id}/plan", headers={"Authorization": "Bearer not-it"}
    )
    assert wrong.status_code == 404
