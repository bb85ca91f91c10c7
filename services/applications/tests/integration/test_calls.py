"""Calls over HTTP: creation, opening now or later, closing on time by itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pearls_shared.testing import wait_for

pytestmark = pytest.mark.integration


async def test_a_call_opened_now_is_published_with_the_request_correlation(service):
    response = await service.client.post(
        "/calls",
        json=service.call_body(),
        headers={**service.as_coordinator(), "X-Correlation-ID": "corr-open-now-1"},
    )
    assert response.status_code == 201, response.text
    call = response.json()
    assert call["status"] == "open"
    assert call["themes"][0] == "ecology_health" and len(call["themes"]) == 6
    assert "LV" in call["eligible_countries"] and len(call["eligible_countries"]) == 10

    [opened] = await service.wait_for_events([call["call_id"]], ["pearls.call.opened"])
    assert opened.key == call["call_id"] and opened.subject == call["call_id"]
    assert opened.correlation_id == "corr-open-now-1"
    assert opened.source == "/pearls/applications"
    assert opened.data["places"] == 2 and opened.data["title"]["de"] == "Kulturperlen 2026"

    public = await service.client.get(f"/calls/{call['call_id']}")
    assert public.status_code == 200 and public.json()["status"] == "open"
    # Reviewers read what each criterion means: the labels are kept, not just keys and weights.
    assert [c["label"] for c in public.json()["rubric"]["criteria"]] == [
        {"en": "Relevance"},
        {"en": "Commitment"},
    ]


async def test_a_call_opens_at_its_time_and_closes_itself_at_its_closing_time(service):
    now = datetime.now(UTC)
    call = await service.create_call(
        opens_at=(now + timedelta(seconds=1)).isoformat(),
        closes_at=(now + timedelta(seconds=2.5)).isoformat(),
    )
    assert call["status"] == "scheduled"
    refused = await service.client.post(
        f"/calls/{call['call_id']}/applications", json=service.application_body()
    )
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["type"] == "submission_window"

    async def closed():
        response = await service.client.get(f"/calls/{call['call_id']}")
        return response.json()["status"] == "closed"

    await wait_for(closed, within=30, what="the call to close by itself")
    events = await service.wait_for_events(
        [call["call_id"]], ["pearls.call.opened", "pearls.call.closed"]
    )
    closed_event = next(e for e in events if e.type == "pearls.call.closed")
    assert closed_event.data["closed_early"] is False
    assert closed_event.data["applications_received"] == 0
    audit = await service.client.get(
        f"/calls/{call['call_id']}/audit", headers=service.as_coordinator()
    )
    actions = [(e["actor"], e["action"]) for e in audit.json()]
    assert ("system", "call_opened") in actions and ("system", "call_closed") in actions


async def test_a_coordinator_closes_a_call_early(service):
    call = await service.create_call()
    await service.submit(call["call_id"])
    await service.close(call["call_id"])
    events = await service.wait_for_events([call["call_id"]], ["pearls.call.closed"])
    closed = next(e for e in events if e.type == "pearls.call.closed")
    assert closed.data["closed_early"] is True and closed.data["applications_received"] == 1
    again = await service.client.post(
        f"/calls/{call['call_id']}/close", headers=service.as_coordinator()
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("override", "loc", "kind"),
    [
        ({"title": {"de": "Nur Deutsch"}}, ["body", "title"], "value_error"),
        ({"places": 0}, ["body", "places"], "greater_than_equal"),
        (
            {"population_min": 50_000, "population_max": 10},
            ["body", "population_max"],
            "population_range",
        ),
        ({"closes_at": "2020-01-01T00:00:00+00:00"}, ["body", "closes_at"], "future"),
        ({"closes_at": "2030-01-01T00:00:00"}, ["body", "closes_at"], "timezone_aware"),
        # Times that leave the representable range once converted to UTC.
        ({"closes_at": "9999-12-31T23:59:59-12:00"}, ["body", "closes_at"], "value_error"),
        ({"opens_at": "0001-01-01T00:00:00+14:00"}, ["body", "opens_at"], "value_error"),
        ({"themes": ["Not A Slug"]}, ["body", "themes", 0], "string_pattern_mismatch"),
        (
            {"eligible_countries": ["lv"]},
            ["body", "eligible_countries", 0],
            "string_pattern_mismatch",
        ),
    ],
)
async def test_a_bad_call_is_refused_naming_the_field(service, override, loc, kind):
    response = await service.client.post(
        "/calls", json=service.call_body(**override), headers=service.as_coordinator()
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc and error["type"] == kind
    assert (await service.client.get("/calls")).json() == []


async def test_only_coordinators_create_calls(service):
    body = service.call_body()
    assert (await service.client.post("/calls", json=body)).status_code == 401
    bad = {"Authorization": "Bearer not-a-known-token"}
    assert (await service.client.post("/calls", json=body, headers=bad)).status_code == 401
    reviewer = service.as_reviewer("rev-tartu")
    assert (await service.client.post("/calls", json=body, headers=reviewer)).status_code == 403
    second = {"Authorization": "Bearer second-coordinator-tok"}
    assert (await service.client.post("/calls", json=body, headers=second)).status_code == 201


async def test_several_schedulers_at_once_close_a_due_call_exactly_once(service):
    """Replicas each run the scheduler: a due call is closed and announced once."""
    from pearls_applications.service_layer.handlers import Applications
    from pearls_shared.db import create_pool
    from pearls_shared.settings import PostgresSettings

    call = await service.create_call()  # closes in 30 days: the app's own scheduler waits
    later = datetime.now(UTC) + timedelta(days=31)
    pool = await create_pool(PostgresSettings(database_url=service.dsn))
    try:
        replicas = [Applications(pool, clock=lambda: later) for _ in range(4)]
        changed = await asyncio.gather(*(r.run_schedule() for r in replicas))
        assert sum(changed) == 1
        async with pool.acquire() as conn:
            closed_events = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE message_key = $1"
                " AND headers::text LIKE '%pearls.call.closed%'",
                call["call_id"].encode(),
            )
            closed_audits = await conn.fetchval(
                "SELECT count(*) FROM audit_log WHERE call_id = $1 AND action = 'call_closed'",
                uuid.UUID(call["call_id"]),
            )
    finally:
        await pool.close()
    assert closed_events == 1 and closed_audits == 1
