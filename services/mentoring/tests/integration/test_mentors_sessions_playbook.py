"""Coordinators steer the matching; sessions and the playbook through the HTTP API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pearls_shared.testing import wait_for

from .conftest import Service
from .test_plans import bearer, plan_body

pytestmark = pytest.mark.integration


async def test_override_is_audited_and_keeps_the_hard_constraints(service: Service) -> None:
    first = await service.register_mentor(country="EE", languages=["et", "en"])
    accepted = await service.join(city="Kuldīga", country="LV", languages=["lv", "en"])
    matched = await service.matched(accepted.application_id)
    assert matched["mentor"]["mentor_id"] == first["mentor_id"]
    german_only = await service.register_mentor(country="DE", languages=["de"], language="de")
    second = await service.register_mentor(country="LT", languages=["lt", "en"])
    url = f"/participants/{accepted.application_id}/mentor"

    refused = await service.client.put(
        url,
        json={"mentor_id": german_only["mentor_id"], "reason": "Knows the festival scene."},
        headers=service.coordinator,
    )
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["type"] == "shared_language"

    done = await service.client.put(
        url,
        json={"mentor_id": second["mentor_id"], "reason": "Knows the festival scene."},
        headers=service.coordinator,
    )
    assert done.status_code == 200, done.text
    assert done.json()["score"] is None and "Knows the festival scene." in done.json()["summary"]
    now = await service.participant(accepted.application_id)
    assert now["mentor"]["mentor_id"] == second["mentor_id"]
    assert now["overridden_by_coordinator"] is True

    audit = await service.client.get(
        f"/participants/{accepted.application_id}/audit", headers=service.coordinator
    )
    overrides = [a for a in audit.json() if a["action"] == "mentor_overridden"]
    assert overrides and overrides[0]["actor"] == "coordinator:anna"
    assert overrides[0]["details"]["reason"] == "Knows the festival scene."
    assert overrides[0]["details"]["replaces_mentor_id"] == first["mentor_id"]

    events = await service.wait_for_events(
        [accepted.application_id],
        ["pearls.mentor.assigned", "pearls.mentor.assigned", "pearls.mentor.unassigned"],
    )
    [unassigned] = [e for e in events if e.type == "pearls.mentor.unassigned"]
    assert unassigned.data["reason_code"] == "reassigned"
    assert unassigned.data["mentor"]["mentor_id"] == first["mentor_id"]
    [overridden] = [e for e in events if e.data.get("overridden_by_coordinator")]
    assert overridden.data["replaces_mentor_id"] == first["mentor_id"]

    no_city = await service.client.post(
        "/mentors",
        json={
            "kind": "pearl_city",
            "name": "Kadri Tamm",
            "email": "kadri.no-city@example.org",
            "language": "et",
            "languages": ["et"],
            "country": "EE",
            "capacity": 1,
            "themes": ["culture_creative_industries"],
        },
        headers=service.coordinator,
    )
    assert no_city.status_code == 422
    assert no_city.json()["detail"][0]["loc"] == ["body", "city_name"]

    renewed = await service.client.post(
        f"/mentors/{second['mentor_id']}/token", headers=service.coordinator
    )
    assert renewed.status_code == 200
    old_token = await service.client.get(
        f"/mentors/{second['mentor_id']}", headers=bearer(second["token"])
    )
    assert old_token.status_code == 401
    new_token = await service.client.get(
        f"/mentors/{second['mentor_id']}", headers=bearer(renewed.json()["token"])
    )
    assert new_token.status_code == 200

    not_coordinator = await service.client.put(
        url,
        json={"mentor_id": first["mentor_id"], "reason": "x"},
        headers=bearer(renewed.json()["token"]),
    )
    assert not_coordinator.status_code == 403


async def test_a_paused_mentors_participants_are_matched_anew(service: Service) -> None:
    leaving = await service.register_mentor(capacity=2)
    accepted = await service.join(city="Ystad", country="SE", languages=["sv", "en"])
    assert (await service.matched(accepted.application_id))["mentor"]["mentor_id"] == leaving[
        "mentor_id"
    ]
    staying = await service.register_mentor(capacity=2, country="FI", languages=["fi", "en"])
    paused = await service.client.post(
        f"/mentors/{leaving['mentor_id']}/pause", headers=service.coordinator
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["load"] == 0
    now = await service.participant(accepted.application_id)
    assert now["mentor"]["mentor_id"] == staying["mentor_id"]
    events = await service.wait_for_events(
        [accepted.application_id],
        ["pearls.mentor.assigned", "pearls.mentor.unassigned", "pearls.mentor.assigned"],
    )
    [gone] = [e for e in events if e.type == "pearls.mentor.unassigned"]
    assert gone.data["reason_code"] == "mentor_withdrawn"


async def test_a_participant_no_mentor_fits_waits_visibly(service: Service) -> None:
    await service.register_mentor(languages=["et"], language="et")
    accepted = await service.join(city="Kuldīga", country="LV", languages=["lv"])

    async def waiting() -> dict[str, Any] | None:
        p = await service.participant(accepted.application_id)
        return p if p["waiting"] else None

    p = await wait_for(waiting, what="the participant waiting")
    assert p["status"] == "waiting" and p["waiting"]["reasons"] == ["no_shared_language"]
    listed = await service.client.get("/participants?waiting=true", headers=service.coordinator)
    assert accepted.application_id in {uuid.UUID(x["participant_id"]) for x in listed.json()}
    [told] = await service.wait_for_events([accepted.application_id], ["pearls.mentor.unmatched"])
    assert told.data["reasons"] == ["no_shared_language"]
    run = await service.client.post("/matching/runs", headers=service.coordinator)
    assert str(accepted.application_id) in {u["participant_id"] for u in run.json()["unmatched"]}

    latvian = await service.register_mentor(languages=["lv", "en"], country="LT")
    assert (await service.matched(accepted.application_id))["mentor"]["mentor_id"] == latvian[
        "mentor_id"
    ]
    assert [e.type for e in await service.events_about([accepted.application_id])].count(
        "pearls.mentor.unmatched"
    ) == 1


async def test_sessions_are_proposed_by_theme_scheduled_and_attended(service: Service) -> None:
    host = await service.register_mentor(capacity=5)
    cities = [("Kuldīga", "LV"), ("Viljandi", "EE"), ("Ystad", "SE")]
    joined = [await service.join(city=c, country=cc) for c, cc in cities]
    ids = {str(a.application_id) for a in joined}
    for a in joined:  # a mentor is proposed groups among its own participants
        await service.matched(a.application_id)
    proposals = await service.client.get("/sessions/proposals", headers=bearer(host["token"]))
    assert proposals.status_code == 200
    [group] = [
        g for g in proposals.json() if {p["participant_id"] for p in g["participants"]} == ids
    ]
    assert group["language"] == "en"
    stranger = await service.register_mentor(capacity=1, languages=["de"], language="de")
    theirs = await service.client.get("/sessions/proposals", headers=bearer(stranger["token"]))
    assert theirs.status_code == 200 and theirs.json() == []  # no participants of its own

    starts = (datetime.now(UTC) + timedelta(days=14)).replace(tzinfo=None, microsecond=0)
    body = {
        "title": "Festivals run by volunteers",
        "language": "en",
        "time_zone": "Europe/Riga",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "online_url": "https://meet.pearls.example/volunteers",
        "themes": [group["theme"]],
        "agenda": ["Round of introductions", "Viljandi's volunteer model"],
        "host_mentor_ids": [host["mentor_id"]],
        "participant_ids": sorted(ids),
    }
    other_host = await service.register_mentor()
    not_hosting = await service.client.post(
        "/sessions", json=body, headers=bearer(other_host["token"])
    )
    assert not_hosting.status_code == 403
    created = await service.client.post("/sessions", json=body, headers=bearer(host["token"]))
    assert created.status_code == 201, created.text
    session = created.json()
    # Wall-clock time in Riga, shown with Riga's offset.
    assert datetime.fromisoformat(session["starts_at"]) == starts.replace(
        tzinfo=ZoneInfo("Europe/Riga")
    )
    fetched = await service.client.get(
        f"/sessions/{session['session_id']}", headers=service.coordinator
    )
    assert fetched.json()["starts_at"] == session["starts_at"]
    [event] = await service.wait_for_events([session["session_id"]], ["pearls.session.scheduled"])
    assert {p["participant_id"] for p in event.data["participants"]} == ids
    assert event.data["hosts"][0]["mentor_id"] == host["mentor_id"]

    bad_zone = await service.client.post(
        "/sessions", json={**body, "time_zone": "Mars/Olympus"}, headers=service.coordinator
    )
    assert bad_zone.status_code == 422
    assert bad_zone.json()["detail"][0]["loc"] == ["body", "time_zone"]
    unknown = await service.client.post(
        "/sessions",
        json={**body, "participant_ids": [str(uuid.uuid4())]},
        headers=service.coordinator,
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "participant_ids", 0]
    too_early = await service.client.put(
        f"/sessions/{session['session_id']}/attendance",
        json={"attended": sorted(ids)},
        headers=bearer(host["token"]),
    )
    assert too_early.status_code == 409

    # Once the session has begun, a host records who came.
    mentoring = service.app.state.mentoring
    real_clock = mentoring.clock
    mentoring.clock = lambda: real_clock() + timedelta(days=15)
    try:
        first_two = sorted(ids)[:2]
        uninvited = await service.client.put(
            f"/sessions/{session['session_id']}/attendance",
            json={"attended": [*first_two, str(uuid.uuid4())]},
            headers=bearer(host["token"]),
        )
        assert uninvited.status_code == 422
        assert uninvited.json()["detail"][0]["loc"] == ["body", "attended", 2]
        recorded = await service.client.put(
            f"/sessions/{session['session_id']}/attendance",
            json={"attended": first_two, "notes": "Viljandi shared its volunteer handbook."},
            headers=bearer(host["token"]),
        )
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["attended"] == first_two
        not_host = await service.client.put(
            f"/sessions/{session['session_id']}/attendance",
            json={"attended": first_two},
            headers=bearer(other_host["token"]),
        )
        assert not_host.status_code == 403
    finally:
        mentoring.clock = real_clock


async def test_playbook_has_curated_and_consented_practices_without_personal_data(
    service: Service,
) -> None:
    mentor = await service.register_mentor()
    token = f"applicant-{uuid.uuid4().hex}"
    accepted = await service.join(token=token, city="Kuldīga", country="LV")
    await service.matched(accepted.application_id)
    url = f"/participants/{accepted.application_id}/plan"
    body = plan_body()
    body["measures"].append(
        {**body["measures"][0], "title": "Private measure", "share_consent": False}
    )
    plan = await service.client.put(url, json=body, headers=bearer(token))
    measures = {m["title"]: m["measure_id"] for m in plan.json()["revisions"][0]["measures"]}
    publish = f"{url}/measures/{measures['Youth festival board']}/publish"
    early = await service.client.post(publish, headers=service.coordinator)
    assert early.status_code == 409 and early.json()["detail"][0]["type"] == "plan_approved_first"
    await service.client.post(
        f"{url}/reviews",
        json={"revision": 1, "decision": "approve"},
        headers=bearer(mentor["token"]),
    )
    published = await service.client.post(publish, headers=service.coordinator)
    assert published.status_code == 201, published.text
    again = await service.client.post(publish, headers=service.coordinator)
    assert again.status_code == 409
    private = await service.client.post(
        f"{url}/measures/{measures['Private measure']}/publish", headers=service.coordinator
    )
    assert private.status_code == 409 and private.json()["detail"][0]["type"] == "consent"

    curated = await service.client.post(
        "/playbook",
        json={
            "theme": "culture_creative_industries",
            "language": "de",
            "title": "Leerstand als Bühne",
            "summary": "Leere Läden werden für einen Sommer zu Ateliers.",
            "body": "Die Stadt vermittelt, Eigentümer verzichten auf Miete.",
            "city_name": "Husum",
            "country": "DE",
        },
        headers=service.coordinator,
    )
    assert curated.status_code == 201

    found = await service.client.get("/playbook", params={"theme": "leisure_youth_social"})
    assert found.status_code == 200  # public: no token
    [entry] = [e for e in found.json() if e["entry_id"] == published.json()["entry_id"]]
    assert entry["city_name"] == "Kuldīga" and entry["source"] == "action_plan"
    text = (await service.client.get(f"/playbook/{entry['entry_id']}")).text
    assert "Inese" not in text and "@" not in text  # no responsible person, no contact
    words = await service.client.get("/playbook", params={"q": "Ateliers", "language": "de"})
    assert [e["title"] for e in words.json()] == ["Leerstand als Bühne"]
