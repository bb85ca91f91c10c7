"""Access rules: conflicts checked again at review time, final states not reviewed,
scores withheld from applicants, idempotency records purged, decision checks mapped."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import structlog

from pearls_applications.adapters import repository as repo
from pearls_applications.service_layer import handlers
from pearls_applications.service_layer.handlers import DECISION_CONSTRAINTS, Applications

pytestmark = pytest.mark.integration

KEDAINIAI = ("Kėdainiai", "LT", 23_500)
KULDIGA = ("Kuldīga", "LV", 10_800)
VALMIERA = ("Valmiera", "LV", 23_000)


async def apply(service, call_id, place):
    city, country, population = place
    return await service.submit(call_id, city=city, country=country, population=population)


async def assign(service, app_id, reviewer_id):
    response = await service.client.post(
        f"/applications/{app_id}/assignments",
        json={"reviewer_id": reviewer_id},
        headers=service.as_coordinator(),
    )
    assert response.status_code == 201, response.text


async def review(service, app_id, headers, relevance=4, commitment=4):
    return await service.client.post(
        f"/applications/{app_id}/reviews",
        json={"scores": {"relevance": relevance, "commitment": commitment}, "comment": "Good."},
        headers=headers,
    )


async def decide(service, app_id, decision, reason=None):
    body = {"decision": decision} | ({"reason": reason} if reason else {})
    return await service.client.post(
        f"/applications/{app_id}/decision", json=body, headers=service.as_coordinator()
    )


async def audit(service, app_id):
    response = await service.client.get(
        f"/applications/{app_id}/audit", headers=service.as_coordinator()
    )
    return response.json()


@contextlib.contextmanager
def captured_logs(monkeypatch):
    """The handlers' log lines (a fresh logger, so no cached configuration hides them)."""
    with structlog.testing.capture_logs() as logs:
        monkeypatch.setattr(handlers, "log", structlog.get_logger(handlers.__name__))
        yield logs


async def sql(service, query, *args):
    conn = await asyncpg.connect(service.dsn)
    try:
        return await conn.execute(query, *args)
    finally:
        await conn.close()


# -- conflicts of interest are checked again when the review is recorded -------------


async def test_a_conflict_arising_after_the_assignment_refuses_the_review(service, monkeypatch):
    call = await service.create_call(reviews_required=1)
    kedainiai = await apply(service, call["call_id"], KEDAINIAI)
    app_id = kedainiai["application_id"]
    # rev-kaunas (LT) may review a Lithuanian application while the call allows it …
    await assign(service, app_id, "rev-kaunas")
    await service.close(call["call_id"])
    # … but the call now excludes reviewers of the applicant's country.
    await sql(
        service,
        "UPDATE calls SET conflict_same_country = true WHERE call_id = $1",
        uuid.UUID(call["call_id"]),
    )
    with captured_logs(monkeypatch) as logs:
        refused = await review(service, app_id, service.as_reviewer("rev-kaunas"))
    assert refused.status_code == 403
    [error] = refused.json()["detail"]
    assert error["type"] == "conflict_of_interest" and error["loc"] == ["path", "application_id"]
    assert "same_country" in error["msg"]
    assert [
        (entry["reviewer_id"], entry["reason"])
        for entry in logs
        if entry["event"] == "review_refused" and entry["application_id"] == app_id
    ] == [("rev-kaunas", "same_country")]
    # The refusal is in the audit trail; no review was recorded.
    last = (await audit(service, app_id))[-1]
    assert (last["actor"], last["action"], last["details"]) == (
        "reviewer:rev-kaunas",
        "review_refused",
        {"reviewer_id": "rev-kaunas", "reason": "same_country"},
    )
    reviews = await service.client.get(
        f"/applications/{app_id}/reviews", headers=service.as_coordinator()
    )
    assert reviews.json() == []


async def test_a_reviewer_who_moved_to_the_applicant_city_cannot_review_it(service):
    call = await service.create_call(reviews_required=1)
    kuldiga = await apply(service, call["call_id"], KULDIGA)
    app_id = kuldiga["application_id"]
    reviewer_id = f"rev-{uuid.uuid4().hex[:8]}"
    registered = await service.client.post(
        "/reviewers",
        json={
            "reviewer_id": reviewer_id,
            "name": "Ilze Kalniņa",
            "city_name": "Rīga",
            "country": "LV",
        },
        headers=service.as_coordinator(),
    )
    assert registered.status_code == 201, registered.text
    token = {"Authorization": f"Bearer {registered.json()['token']}"}
    await assign(service, app_id, reviewer_id)
    await service.close(call["call_id"])
    await sql(
        service, "UPDATE reviewers SET city_name = 'KULDĪGA' WHERE reviewer_id = $1", reviewer_id
    )
    refused = await review(service, app_id, token)
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["type"] == "conflict_of_interest"
    assert "same_city" in refused.json()["detail"][0]["msg"]
    # Back in Rīga, the same reviewer's review is recorded.
    await sql(
        service, "UPDATE reviewers SET city_name = 'Rīga' WHERE reviewer_id = $1", reviewer_id
    )
    assert (await review(service, app_id, token)).status_code == 201


# -- rejected and withdrawn applications are not reviewed -----------------------------


@pytest.mark.parametrize("final", ["rejected", "withdrawn"])
async def test_a_rejected_or_withdrawn_application_cannot_be_reviewed(service, final):
    call = await service.create_call(reviews_required=1)
    receipt = await apply(service, call["call_id"], KULDIGA)
    app_id = receipt["application_id"]
    await assign(service, app_id, "rev-gdansk")
    await service.close(call["call_id"])
    if final == "rejected":
        assert (
            await decide(service, app_id, "reject", "Outside the programme.")
        ).status_code == 200
    else:
        left = await service.client.post(
            f"/applications/{app_id}/withdraw",
            headers={"Authorization": f"Bearer {receipt['applicant_token']}"},
        )
        assert left.status_code == 200
    refused = await review(service, app_id, service.as_reviewer("rev-gdansk"))
    assert refused.status_code == 409
    assert refused.json()["detail"] == [
        {
            "loc": ["path", "application_id"],
            "msg": f"the application is {final}; it can no longer be reviewed",
            "type": "status",
        }
    ]


# -- applicants see scores and ranks only as the call allows --------------------------


async def scored(service, **call_overrides):
    call = await service.create_call(reviews_required=1, **call_overrides)
    receipt = await apply(service, call["call_id"], VALMIERA)
    await assign(service, receipt["application_id"], "rev-gdansk")
    await service.close(call["call_id"])
    response = await review(service, receipt["application_id"], service.as_reviewer("rev-gdansk"))
    assert response.status_code == 201
    return call, receipt


async def as_applicant(service, receipt):
    response = await service.client.get(
        f"/applications/{receipt['application_id']}",
        headers={"Authorization": f"Bearer {receipt['applicant_token']}"},
    )
    assert response.status_code == 200
    return response.json()


async def test_applicants_see_score_and_rank_only_after_the_decision_by_default(service):
    call, receipt = await scored(service)
    assert call["scores_visible_to_applicants"] == "after_decision"
    before = await as_applicant(service, receipt)
    assert (before["score"], before["rank"], before["scores_withheld"]) == (None, None, True)
    # Coordinators and the assigned reviewer see them all along.
    staff = await service.client.get(
        f"/applications/{receipt['application_id']}", headers=service.as_coordinator()
    )
    assert staff.json()["score"] == pytest.approx(75.0) and staff.json()["rank"] == 1
    assert staff.json()["scores_withheld"] is False
    assert (await decide(service, receipt["application_id"], "waitlist")).status_code == 200
    after = await as_applicant(service, receipt)
    assert (after["score"], after["rank"], after["scores_withheld"]) == (75.0, 1, False)


async def test_a_call_may_never_show_scores_to_applicants(service):
    call, receipt = await scored(service, scores_visible_to_applicants="never")
    assert call["scores_visible_to_applicants"] == "never"
    assert (await decide(service, receipt["application_id"], "accept")).status_code == 200
    seen = await as_applicant(service, receipt)
    assert (seen["status"], seen["score"], seen["rank"]) == ("accepted", None, None)
    assert seen["scores_withheld"] is True
    # Nor in the answer to a withdrawal.
    left = await service.client.post(
        f"/applications/{receipt['application_id']}/withdraw",
        headers={"Authorization": f"Bearer {receipt['applicant_token']}"},
    )
    assert left.status_code == 200
    assert (left.json()["score"], left.json()["scores_withheld"]) == (None, True)
    unknown = await service.client.post(
        "/calls",
        json=service.call_body(scores_visible_to_applicants="always"),
        headers=service.as_coordinator(),
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "scores_visible_to_applicants"]


# -- idempotency records are purged after the retention -------------------------------


async def test_idempotency_records_older_than_the_retention_are_purged(service):
    call = await service.create_call()
    old_key, new_key = str(uuid.uuid4()), str(uuid.uuid4())
    old_body = service.application_body(city="Kuldīga")
    new_body = service.application_body(city="Valmiera", population=23_000)
    old = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=old_body,
        headers={"Idempotency-Key": old_key},
    )
    new = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=new_body,
        headers={"Idempotency-Key": new_key},
    )
    assert old.status_code == new.status_code == 201
    call_id = uuid.UUID(call["call_id"])
    await sql(
        service,
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE call_id = $1 AND application_id = $2",
        call_id,
        uuid.UUID(old.json()["application_id"]),
    )
    applications: Applications = service.app.state.applications
    assert applications.idempotency_retention == timedelta(days=1)
    # Several replicas purging at once delete each row once.
    other = Applications(applications.pool, idempotency_retention=timedelta(days=1))
    purged = [await applications.purge_idempotency(), await other.purge_idempotency()]
    assert purged[0] >= 1 and purged[1] == 0
    conn = await asyncpg.connect(service.dsn)
    try:
        left = await conn.fetch(
            "SELECT application_id FROM idempotency_keys WHERE call_id = $1", call_id
        )
    finally:
        await conn.close()
    assert [str(r["application_id"]) for r in left] == [new.json()["application_id"]]
    # Within the retention a retry still gets its first answer …
    again = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=new_body,
        headers={"Idempotency-Key": new_key},
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    # … after it, the key is forgotten: the retry is a second application of the city.
    late = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=old_body,
        headers={"Idempotency-Key": old_key},
    )
    assert late.status_code == 409
    assert late.json()["detail"][0]["type"] == "one_application_per_city"


async def test_a_purge_in_batches_removes_every_expired_record(service):
    call = await service.create_call()
    receipts = [
        await service.client.post(
            f"/calls/{call['call_id']}/applications",
            json=service.application_body(city=city, population=20_000),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        for city in ("Kuldīga", "Valmiera", "Cēsis")
    ]
    assert all(r.status_code == 201 for r in receipts)
    call_id = uuid.UUID(call["call_id"])
    # The service's clock runs two days ahead: everything is expired for it.
    applications: Applications = service.app.state.applications
    later = Applications(
        applications.pool,
        clock=lambda: datetime.now(UTC) + timedelta(days=2),
        idempotency_retention=timedelta(days=1),
    )
    assert await later.purge_idempotency(batch=2) >= 3
    async with applications.pool.acquire() as conn:
        assert await repo.find_idempotent(conn, call_id, b"\x00" * 32) is None
        left = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE call_id = $1", call_id
        )
    assert left == 0


# -- every check violation on a decision has its own answer ---------------------------


async def test_every_mapped_decision_constraint_exists_in_the_schema(service):
    conn = await asyncpg.connect(service.dsn)
    try:
        names = {
            r["name"]
            for r in await conn.fetch(
                "SELECT conname AS name FROM pg_constraint"
                " WHERE conrelid = 'applications'::regclass AND contype = 'c'"
                " UNION SELECT tgname FROM pg_trigger WHERE tgrelid = 'applications'::regclass"
            )
        }
    finally:
        await conn.close()
    assert set(DECISION_CONSTRAINTS) <= names
    # Each answer is its own: no two constraints share a rule.
    rules = [refusal.type for refusal in DECISION_CONSTRAINTS.values()]
    assert len(set(rules)) == len(rules)


async def test_the_places_guard_of_the_database_answers_places_limit(service, monkeypatch):
    call = await service.create_call(places=1)
    receipt = await apply(service, call["call_id"], VALMIERA)
    other = await apply(service, call["call_id"], KULDIGA)
    await service.close(call["call_id"])
    assert (await decide(service, receipt["application_id"], "accept")).status_code == 200
    # The domain is made to miss the accepted application, so only the database's
    # guard stands between the second accept and a call over its places.
    load_book = repo.load_book

    async def blind(conn, call_id, lock):
        book = await load_book(conn, call_id, lock)
        book.applications.pop(uuid.UUID(receipt["application_id"]))
        return book

    monkeypatch.setattr(repo, "load_book", blind)
    refused = await decide(service, other["application_id"], "accept")
    assert refused.status_code == 409
    assert refused.json()["detail"] == [
        {
            "loc": ["body", "decision"],
            "msg": "all places of the call are taken",
            "type": "places_limit",
        }
    ]


async def test_an_unknown_check_on_a_decision_is_a_conflict_naming_it(service, monkeypatch):
    call, receipt = await scored(service)
    # A check the service does not know (added by an operator, say) refuses waitlisting
    # in this call only.
    name = f"no_waitlist_{uuid.uuid4().hex[:8]}"
    await sql(
        service,
        f"ALTER TABLE applications ADD CONSTRAINT {name}"
        f" CHECK (status <> 'waitlisted' OR call_id <> '{call['call_id']}') NOT VALID",
    )
    try:
        with captured_logs(monkeypatch) as logs:
            refused = await decide(service, receipt["application_id"], "waitlist")
    finally:
        await sql(service, f"ALTER TABLE applications DROP CONSTRAINT {name}")
    assert refused.status_code == 409
    [error] = refused.json()["detail"]
    assert error["type"] == "constraint" and name in error["msg"]
    assert [
        e["constraint"]
        for e in logs
        if e["event"] == "decision_check_violation_unmapped"
        and e["application_id"] == receipt["application_id"]
    ] == [name]
    # Nothing was written: the application is still as it was, and may be decided.
    assert (await decide(service, receipt["application_id"], "waitlist")).status_code == 200
