"""Review (conflicts, spreading, scoring, ranking) and decisions (places, waitlist) over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration

# Smaller Baltic Sea cities: (name, country, population).
KULDIGA = ("Kuldīga", "LV", 10_800)
VALMIERA = ("Valmiera", "LV", 23_000)
VILJANDI = ("Viljandi", "EE", 17_000)
TARTU = ("Tartu", "EE", 97_000)
KEDAINIAI = ("Kėdainiai", "LT", 23_500)
KARLSHAMN = ("Karlshamn", "SE", 32_000)


async def apply(service, call_id, place):
    city, country, population = place
    return await service.submit(call_id, city=city, country=country, population=population)


async def assign(service, app_id, reviewer_id):
    return await service.client.post(
        f"/applications/{app_id}/assignments",
        json={"reviewer_id": reviewer_id},
        headers=service.as_coordinator(),
    )


async def review(service, app_id, reviewer_id, relevance, commitment, **headers):
    return await service.client.post(
        f"/applications/{app_id}/reviews",
        json={"scores": {"relevance": relevance, "commitment": commitment}, "comment": "Solid."},
        headers={**service.as_reviewer(reviewer_id), **headers},
    )


async def decide(service, app_id, decision, reason=None, **headers):
    body = {"decision": decision}
    if reason:
        body["reason"] = reason
    return await service.client.post(
        f"/applications/{app_id}/decision",
        json=body,
        headers={**service.as_coordinator(), **headers},
    )


async def audit(service, app_id):
    response = await service.client.get(
        f"/applications/{app_id}/audit", headers=service.as_coordinator()
    )
    return response.json()


async def test_conflicts_of_interest_are_refused_with_the_reason_recorded(service):
    call = await service.create_call()
    tartu = await apply(service, call["call_id"], TARTU)
    refused = await assign(service, tartu["application_id"], "rev-tartu")
    assert refused.status_code == 409
    [error] = refused.json()["detail"]
    assert error["type"] == "conflict_of_interest" and "same_city" in error["msg"]
    assert error["loc"] == ["body", "reviewer_id"]
    entries = await audit(service, tartu["application_id"])
    assert entries[-1]["action"] == "assignment_refused"
    assert entries[-1]["details"] == {"reviewer_id": "rev-tartu", "reason": "same_city"}
    assert entries[-1]["actor"] == "coordinator:anna"
    # Same country is fine unless the call says otherwise.
    viljandi = await apply(service, call["call_id"], VILJANDI)
    assert (await assign(service, viljandi["application_id"], "rev-tartu")).status_code == 201

    strict = await service.create_call(conflict_same_country=True)
    viljandi2 = await apply(service, strict["call_id"], VILJANDI)
    same_country = await assign(service, viljandi2["application_id"], "rev-tartu")
    assert (
        same_country.status_code == 409
        and "same_country" in same_country.json()["detail"][0]["msg"]
    )
    assert (await assign(service, viljandi2["application_id"], "rev-kaunas")).status_code == 201
    unknown = await assign(service, viljandi2["application_id"], "rev-nobody")
    assert unknown.status_code == 404 and unknown.json()["detail"][0]["loc"] == [
        "body",
        "reviewer_id",
    ]


async def test_the_service_spreads_applications_evenly_around_conflicts(service):
    call = await service.create_call(reviews_required=2)
    apps = [await apply(service, call["call_id"], p) for p in (TARTU, KULDIGA, KEDAINIAI)]
    response = await service.client.post(
        f"/calls/{call['call_id']}/assignments/auto", headers=service.as_coordinator()
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["assigned"]) == 6 and result["short"] == {}
    per_reviewer: dict[str, int] = {}
    per_app: dict[str, set[str]] = {}
    for a in result["assigned"]:
        per_reviewer[a["reviewer_id"]] = per_reviewer.get(a["reviewer_id"], 0) + 1
        per_app.setdefault(a["application_id"], set()).add(a["reviewer_id"])
    assert sorted(per_reviewer.values()) == [2, 2, 2]
    assert "rev-tartu" not in per_app[apps[0]["application_id"]]
    assert {
        "application_id": apps[0]["application_id"],
        "reviewer_id": "rev-tartu",
        "reason": "same_city",
    } in result["refused"]
    again = await service.client.post(
        f"/calls/{call['call_id']}/assignments/auto", headers=service.as_coordinator()
    )
    assert again.json()["assigned"] == []


async def test_reviews_score_every_criterion_and_publish_when_complete(service):
    call = await service.create_call(reviews_required=2)
    kuldiga = await apply(service, call["call_id"], KULDIGA)
    valmiera = await apply(service, call["call_id"], VALMIERA)
    for app in (kuldiga, valmiera):
        for reviewer in ("rev-kaunas", "rev-gdansk"):
            assert (await assign(service, app["application_id"], reviewer)).status_code == 201
    k_id, v_id = kuldiga["application_id"], valmiera["application_id"]

    early = await review(service, k_id, "rev-kaunas", 5, 5)
    assert early.status_code == 409 and early.json()["detail"][0]["type"] == "call_closed_first"
    await service.close(call["call_id"])

    assert (await review(service, k_id, "rev-tartu", 5, 5)).status_code == 403
    missing = await service.client.post(
        f"/applications/{k_id}/reviews",
        json={"scores": {"relevance": 4}, "comment": "Hm."},
        headers=service.as_reviewer("rev-kaunas"),
    )
    assert missing.status_code == 422
    assert missing.json()["detail"][0] == {
        "loc": ["body", "scores", "commitment"],
        "msg": "every criterion must be scored; 'commitment' is missing",
        "type": "rubric_complete",
    }
    outside = await review(service, k_id, "rev-kaunas", 6, 1)
    assert outside.status_code == 422 and outside.json()["detail"][0]["type"] == "rubric_scale"
    extra = await service.client.post(
        f"/applications/{k_id}/reviews",
        json={"scores": {"relevance": 4, "commitment": 4, "beauty": 5}, "comment": "Hm."},
        headers=service.as_reviewer("rev-kaunas"),
    )
    assert extra.status_code == 422 and extra.json()["detail"][0]["type"] == "rubric_criterion"
    no_comment = await service.client.post(
        f"/applications/{k_id}/reviews",
        json={"scores": {"relevance": 4, "commitment": 4}},
        headers=service.as_reviewer("rev-kaunas"),
    )
    assert no_comment.status_code == 422

    first = await review(service, k_id, "rev-kaunas", 5, 5)
    assert first.status_code == 201 and first.json()["application_score"] == 100.0
    assert (await review(service, k_id, "rev-kaunas", 1, 1)).status_code == 409
    # relevance 4 of 1..5 (weight 2), commitment 3 (weight 1): (2*0.75 + 0.5) / 3 = 66.67
    second = await review(service, k_id, "rev-gdansk", 4, 3, **{"X-Correlation-ID": "corr-rev-2"})
    assert second.json()["application_score"] == pytest.approx(83.33, abs=0.01)
    await review(service, v_id, "rev-kaunas", 3, 3)
    await review(service, v_id, "rev-gdansk", 3, 2)

    events = await service.wait_for_events([k_id, v_id], ["pearls.application.reviewed"] * 2)
    [k_event] = [e for e in events if e.subject == k_id and e.type.endswith("reviewed")]
    assert k_event.data["score"] == pytest.approx(83.33, abs=0.01)
    assert k_event.data["review_count"] == 2 and k_event.data["reviewers_assigned"] == 2
    assert k_event.correlation_id == "corr-rev-2"

    ranking = await service.client.get(
        f"/calls/{call['call_id']}/ranking", headers=service.as_coordinator()
    )
    assert [(r["rank"], r["city_name"]) for r in ranking.json()] == [
        (1, "Kuldīga"),
        (2, "Valmiera"),
    ]
    as_reviewer = await service.client.get(
        f"/applications/{k_id}", headers=service.as_reviewer("rev-gdansk")
    )
    assert as_reviewer.status_code == 200 and as_reviewer.json()["rank"] == 1
    mine = await service.client.get(
        "/reviewers/me/assignments", headers=service.as_reviewer("rev-gdansk")
    )
    assert {a["application_id"] for a in mine.json() if a["reviewed"]} == {k_id, v_id}
    reviews = await service.client.get(
        f"/applications/{k_id}/reviews", headers=service.as_coordinator()
    )
    assert sorted(r["reviewer_id"] for r in reviews.json()) == ["rev-gdansk", "rev-kaunas"]


async def scored_call(service, places, scored):
    """A closed call with one review per application; ``scored`` = [(place, relevance)]."""
    call = await service.create_call(places=places, reviews_required=1)
    ids = {}
    for place, _ in scored:
        receipt = await apply(service, call["call_id"], place)
        ids[place[0]] = receipt
        assert (await assign(service, receipt["application_id"], "rev-gdansk")).status_code == 201
    await service.close(call["call_id"])
    for place, relevance in scored:
        response = await review(
            service, ids[place[0]]["application_id"], "rev-gdansk", relevance, 3
        )
        assert response.status_code == 201
    return call, ids


async def test_decisions_respect_places_and_a_withdrawal_promotes_the_best_waitlisted(service):
    call, ids = await scored_call(
        service,
        2,
        [(KULDIGA, 5), (VALMIERA, 4), (VILJANDI, 2), (KEDAINIAI, 1), (KARLSHAMN, 3)],
    )
    app = {city: r["application_id"] for city, r in ids.items()}
    assert (await decide(service, app["Kuldīga"], "accept")).json()["status"] == "accepted"
    assert (await decide(service, app["Valmiera"], "accept")).status_code == 200
    full = await decide(service, app["Viljandi"], "accept")
    assert full.status_code == 409
    assert full.json()["detail"][0] == {
        "loc": ["body", "decision"],
        "msg": "all 2 places of the call are taken",
        "type": "places_limit",
    }
    no_reason = await decide(service, app["Kėdainiai"], "reject")
    assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"] == [
        "body",
        "reason",
    ]
    rejected = await decide(service, app["Kėdainiai"], "reject", "Fewer points than the others.")
    assert rejected.json()["status"] == "rejected"
    assert (await decide(service, app["Kėdainiai"], "accept")).status_code == 409
    assert (await decide(service, app["Viljandi"], "waitlist")).status_code == 200
    assert (await decide(service, app["Karlshamn"], "waitlist")).status_code == 200

    kuldiga_token = {
        "Authorization": f"Bearer {ids['Kuldīga']['applicant_token']}",
        "X-Correlation-ID": "corr-leaves",
    }
    left = await service.client.post(
        f"/applications/{app['Kuldīga']}/withdraw", headers=kuldiga_token
    )
    assert left.status_code == 200 and left.json()["status"] == "withdrawn"
    # Karlshamn (relevance 3) ranks above Viljandi (2): it moves up.
    promoted = await service.client.get(
        f"/applications/{app['Karlshamn']}", headers=service.as_coordinator()
    )
    assert promoted.json()["status"] == "accepted" and promoted.json()["from_waitlist"] is True
    still = await service.client.get(
        f"/applications/{app['Viljandi']}", headers=service.as_coordinator()
    )
    assert still.json()["status"] == "waitlisted"
    assert (await decide(service, app["Kuldīga"], "accept")).status_code == 409

    events = await service.wait_for_events(
        list(app.values()),
        ["pearls.application.accepted"] * 3
        + ["pearls.application.waitlisted"] * 2
        + ["pearls.application.rejected", "pearls.application.withdrawn"],
    )
    by = {(e.subject, e.type): e for e in events}
    withdrawn = by[(app["Kuldīga"], "pearls.application.withdrawn")]
    assert withdrawn.data["previous_status"] == "accepted"
    moved_up = by[(app["Karlshamn"], "pearls.application.accepted")]
    assert moved_up.data["from_waitlist"] is True and moved_up.correlation_id == "corr-leaves"
    assert moved_up.key == app["Karlshamn"]
    waitlisted = by[(app["Karlshamn"], "pearls.application.waitlisted")]
    assert waitlisted.data["waitlist_position"] == 1 and waitlisted.data["rank"] == 3
    rejection = by[(app["Kėdainiai"], "pearls.application.rejected")]
    assert rejection.data["reason"] == "Fewer points than the others."
    assert rejection.data["reason_code"] == "not_selected"
    first = by[(app["Kuldīga"], "pearls.application.accepted")]
    assert first.data["rank"] == 1 and first.data["from_waitlist"] is False
    assert first.data["score"] == pytest.approx(83.33, abs=0.01)
    # Accepted directly or moved up: each event carries the digest of that applicant's
    # own token (so mentoring recognises the participant), never the token itself.
    for city in ("Kuldīga", "Valmiera", "Karlshamn"):
        token = ids[city]["applicant_token"]
        accepted_event = by[(app[city], "pearls.application.accepted")]
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert accepted_event.data["applicant_token_sha256"] == digest
        assert token not in json.dumps(accepted_event.data)
    assert not any("token" in field for field in promoted.json())

    trail = await audit(service, app["Karlshamn"])
    assert [(e["actor"], e["action"]) for e in trail][-2:] == [
        ("coordinator:anna", "waitlisted"),
        ("system", "accepted"),
    ]
    accepted = await service.client.get(
        "/applications",
        params={"call_id": call["call_id"], "status": "accepted"},
        headers=service.as_coordinator(),
    )
    assert {a["city_name"] for a in accepted.json()["items"]} == {"Valmiera", "Karlshamn"}


async def test_decisions_wait_for_the_call_to_close(service):
    call = await service.create_call()
    receipt = await apply(service, call["call_id"], KULDIGA)
    early = await decide(service, receipt["application_id"], "accept")
    assert early.status_code == 409 and early.json()["detail"][0]["type"] == "call_closed_first"


async def test_concurrent_accepts_never_exceed_the_places(service):
    _, ids = await scored_call(service, 1, [(KULDIGA, 4), (VALMIERA, 4), (VILJANDI, 4)])
    results = await asyncio.gather(
        *(decide(service, r["application_id"], "accept") for r in ids.values())
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409]


async def test_the_database_itself_refuses_more_accepted_than_places(service):
    call, _ = await scored_call(service, 1, [(KULDIGA, 4), (VALMIERA, 4)])
    conn = await asyncpg.connect(service.dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE applications SET status = 'accepted' WHERE call_id = $1",
                uuid.UUID(call["call_id"]),
            )
    finally:
        await conn.close()


async def test_coordinators_search_by_call_status_country_theme_and_score(service):
    call, _ = await scored_call(
        service, 2, [(KULDIGA, 5), (VALMIERA, 4), (VILJANDI, 2), (KEDAINIAI, 1)]
    )
    other = await service.create_call()
    await apply(service, other["call_id"], KARLSHAMN)

    async def search(**params):
        response = await service.client.get(
            "/applications", params=params, headers=service.as_coordinator()
        )
        assert response.status_code == 200, response.text
        return response.json()

    everything = await search()
    assert everything["total"] == 5
    in_call = await search(call_id=call["call_id"])
    assert [a["city_name"] for a in in_call["items"]] == [
        "Kuldīga",
        "Valmiera",
        "Viljandi",
        "Kėdainiai",
    ]
    assert [a["rank"] for a in in_call["items"]] == [1, 2, 3, 4]
    assert {a["city_name"] for a in (await search(country="LV"))["items"]} == {
        "Kuldīga",
        "Valmiera",
    }
    assert (await search(theme="culture_creative_industries"))["total"] == 5
    assert (await search(theme="digital_participation"))["total"] == 0
    assert [a["city_name"] for a in (await search(min_score=60))["items"]] == [
        "Kuldīga",
        "Valmiera",
    ]
    assert (await search(max_score=20))["total"] == 1
    page = await search(call_id=call["call_id"], limit=2, offset=2)
    assert page["total"] == 4 and [a["city_name"] for a in page["items"]] == [
        "Viljandi",
        "Kėdainiai",
    ]
    past_end = await search(call_id=call["call_id"], limit=2, offset=10)
    assert past_end == {"items": [], "total": 4, "limit": 2, "offset": 10}
    assert (await search(status="waitlisted"))["total"] == 0
    bad = await service.client.get(
        "/applications", params={"status": "maybe"}, headers=service.as_coordinator()
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]
    assert (await service.client.get("/applications")).status_code == 401


async def test_coordinators_register_reviewers_who_then_review(service):
    registered = await service.client.post(
        "/reviewers",
        json={
            "reviewer_id": "rev-turku",
            "name": "Aino Virtanen",
            "city_name": "Turku",
            "country": "FI",
        },
        headers=service.as_coordinator(),
    )
    assert registered.status_code == 201, registered.text
    token = {"Authorization": f"Bearer {registered.json()['token']}"}
    duplicate = await service.client.post(
        "/reviewers",
        json={"reviewer_id": "rev-turku", "name": "Other", "city_name": "Oulu", "country": "FI"},
        headers=service.as_coordinator(),
    )
    assert duplicate.status_code == 409
    configured = await service.client.post(
        "/reviewers",
        json={"reviewer_id": "rev-tartu", "name": "X", "city_name": "Tartu", "country": "EE"},
        headers=service.as_coordinator(),
    )
    assert configured.status_code == 409
    pool = await service.client.get("/reviewers", headers=service.as_coordinator())
    assert [r["reviewer_id"] for r in pool.json()] == [
        "rev-gdansk",
        "rev-kaunas",
        "rev-tartu",
        "rev-turku",
    ]
    call = await service.create_call(reviews_required=1)
    receipt = await apply(service, call["call_id"], KULDIGA)
    assert (await assign(service, receipt["application_id"], "rev-turku")).status_code == 201
    mine = await service.client.get("/reviewers/me/assignments", headers=token)
    assert [a["application_id"] for a in mine.json()] == [receipt["application_id"]]
    await service.close(call["call_id"])
    scored = await service.client.post(
        f"/applications/{receipt['application_id']}/reviews",
        json={"scores": {"relevance": 3, "commitment": 3}, "comment": "Fine."},
        headers=token,
    )
    assert scored.status_code == 201 and scored.json()["application_score"] == 50.0
    assert (await service.client.get("/reviewers", headers=token)).status_code == 403


async def test_trails_and_reviews_of_unknown_ids_are_404_not_empty(service):
    unknown = uuid.uuid4()
    for path, loc in [
        (f"/applications/{unknown}/audit", ["path", "application_id"]),
        (f"/applications/{unknown}/reviews", ["path", "application_id"]),
        (f"/calls/{unknown}/audit", ["path", "call_id"]),
    ]:
        response = await service.client.get(path, headers=service.as_coordinator())
        assert response.status_code == 404, path
        assert response.json()["detail"][0]["loc"] == loc
