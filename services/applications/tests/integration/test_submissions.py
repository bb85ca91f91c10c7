"""Submitting, reading, updating and withdrawing applications over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from pearls_shared.names import KEY_RULE
from pearls_shared.testing import wait_for

pytestmark = pytest.mark.integration


async def count_rows(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_a_submission_answers_id_and_token_and_publishes_what_others_need(service):
    call = await service.create_call()
    response = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=service.application_body(),
        headers={"X-Correlation-ID": "corr-submit-kuldiga"},
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    app_id, token = receipt["application_id"], receipt["applicant_token"]
    assert len(token) >= 40

    [event] = await service.wait_for_events([app_id], ["pearls.application.submitted"])
    assert event.key == app_id and event.subject == app_id
    assert event.correlation_id == "corr-submit-kuldiga"
    assert event.data["call_id"] == call["call_id"]
    assert event.data["country"] == "LV" and event.data["city_name"] == "Kuldīga"
    assert event.data["languages"] == ["lv", "en"]
    assert [c["role"] for c in event.data["contacts"]] == ["primary", "backup"]
    assert event.data["themes"] == ["culture_creative_industries", "leisure_youth_social"]

    own = await service.client.get(
        f"/applications/{app_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert own.status_code == 200 and own.json()["status"] == "submitted"
    # Only the hash of the token is stored.
    conn = await asyncpg.connect(service.dsn)
    try:
        stored = await conn.fetchval(
            "SELECT token_hash FROM applications WHERE application_id = $1", uuid.UUID(app_id)
        )
        assert token.encode() not in bytes(stored) and len(stored) == 32
    finally:
        await conn.close()


async def test_the_applicant_token_opens_only_its_own_application(service):
    call = await service.create_call()
    first = await service.submit(call["call_id"], city="Kuldīga")
    second = await service.submit(call["call_id"], city="Valmiera", population=23_000)
    other = {"Authorization": f"Bearer {second['applicant_token']}"}
    url = f"/applications/{first['application_id']}"
    assert (await service.client.get(url, headers=other)).status_code == 404
    assert (await service.client.get(url)).status_code == 401
    assert (
        await service.client.patch(url, json={"population": 11_000}, headers=other)
    ).status_code == 404
    withdraw = await service.client.post(f"{url}/withdraw", headers=other)
    assert withdraw.status_code == 404
    assert (await service.client.get(url, headers=service.as_coordinator())).status_code == 200
    # A reviewer not assigned to it does not see it either.
    assert (
        await service.client.get(url, headers=service.as_reviewer("rev-tartu"))
    ).status_code == 404


def _contacts(*emails_roles):
    return [{"name": "Someone", "email": e, "language": "en", "role": r} for e, r in emails_roles]


@pytest.mark.parametrize(
    ("override", "loc", "kind"),
    [
        ({"country": "RU"}, ["body", "country"], "eligible_country"),
        ({"country": "FR"}, ["body", "country"], "eligible_country"),
        ({"population": 900_000}, ["body", "population"], "population_range"),
        ({"population": 1200}, ["body", "population"], "population_range"),
        ({"themes": ["space_travel"]}, ["body", "themes", 0], "call_theme"),
        ({"themes": ["Space Travel"]}, ["body", "themes", 0], "string_pattern_mismatch"),
        (
            {"contacts": _contacts(("not-an-email", "primary"))},
            ["body", "contacts", 0, "email"],
            "value_error",
        ),
        (
            {"contacts": _contacts(("a@example.org", "primary"), ("b@example.org", "primary"))},
            ["body", "contacts"],
            "value_error",
        ),
        ({"contacts": _contacts(("a@example.org", "backup"))}, ["body", "contacts"], "value_error"),
        ({"contacts": []}, ["body", "contacts"], "too_short"),
        ({"motivation": "x" * 4001}, ["body", "motivation"], "string_too_long"),
        ({"commitments": ""}, ["body", "commitments"], "string_too_short"),
        ({"city_name": "N" * 201}, ["body", "city_name"], "string_too_long"),
        ({"city_name": "Null\x00town"}, ["body", "city_name"], "value_error"),
        ({"languages": ["xx"]}, ["body", "languages", 0], "literal_error"),
        ({"organisation_type": "company"}, ["body", "organisation_type"], "literal_error"),
        ({"surprise": 1}, ["body", "surprise"], "extra_forbidden"),
    ],
)
async def test_bad_input_is_refused_naming_field_and_rule_and_nothing_is_written(
    service, override, loc, kind
):
    call = await service.create_call()
    response = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=service.application_body(**override),
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc and error["type"] == kind, error
    assert await count_rows(service.dsn, "applications") == 0
    assert await count_rows(service.dsn, "audit_log WHERE application_id IS NOT NULL") == 0
    assert await count_rows(service.dsn, "outbox WHERE payload::text LIKE '%submitted_at%'") == 0


async def test_a_missing_field_is_named(service):
    call = await service.create_call()
    body = service.application_body()
    del body["population"]
    response = await service.client.post(f"/calls/{call['call_id']}/applications", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "population"]
    assert response.json()["detail"][0]["type"] == "missing"


async def test_eligibility_follows_the_call_country_list_and_range(service):
    call = await service.create_call(eligible_countries=["SE", "FI"], population_max=50_000)
    refused = await service.client.post(
        f"/calls/{call['call_id']}/applications", json=service.application_body(country="LV")
    )
    assert refused.status_code == 422 and "SE, FI" in refused.json()["detail"][0]["msg"]
    await service.submit(call["call_id"], city="Härnösand", country="SE", population=25_000)


async def test_submissions_outside_the_window_are_refused(service):
    call = await service.create_call()
    await service.close(call["call_id"])
    response = await service.client.post(
        f"/calls/{call['call_id']}/applications", json=service.application_body()
    )
    assert response.status_code == 409
    [error] = response.json()["detail"]
    assert error["type"] == "submission_window" and error["loc"] == ["path", "call_id"]
    unknown = await service.client.post(
        f"/calls/{uuid.uuid4()}/applications", json=service.application_body()
    )
    assert unknown.status_code == 404


async def test_one_application_per_city_per_call_whatever_the_spelling(service):
    call = await service.create_call()
    await service.submit(call["call_id"], city="Kuldīga")
    for spelling in [" KULDĪGA ", "kuldīga", "Ｋｕｌｄīｇａ", "Kuldi\u0304ga"]:
        response = await service.client.post(
            f"/calls/{call['call_id']}/applications",
            json=service.application_body(city=spelling),
        )
        assert response.status_code == 409, spelling
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "city_name"]
        assert error["type"] == "one_application_per_city"
    # The same name in another country is another place.
    await service.submit(call["call_id"], city="Kuldīga", country="LT")
    # And another call is another race.
    other = await service.create_call()
    await service.submit(other["call_id"], city="Kuldīga")
    assert await count_rows(service.dsn, "applications") == 3


async def test_a_key_stored_under_another_rule_is_computed_again(service):
    # Rows say which rule made their key; a submission compares its key with the stored
    # keys of today's rule in the database and computes the keys of other rules again.
    call = await service.create_call()
    old = await service.submit(call["call_id"], city="Kuldīga")
    older = await service.submit(call["call_id"], city="Valmiera", population=23_000)
    conn = await asyncpg.connect(service.dsn)
    try:
        rules = await conn.fetch("SELECT city_key_rule FROM applications")
        assert [r["city_key_rule"] for r in rules] == [KEY_RULE, KEY_RULE]
        # Keys an older rule made: neither is what today's rule makes of the name.
        await conn.execute(
            "UPDATE applications SET city_key = 'kuldiga (old rule)', city_key_rule = NULL"
            " WHERE application_id = $1",
            uuid.UUID(old["application_id"]),
        )
        await conn.execute(
            "UPDATE applications SET city_key = 'valmiera (old rule)',"
            " city_key_rule = 'names-0' WHERE application_id = $1",
            uuid.UUID(older["application_id"]),
        )
    finally:
        await conn.close()
    for spelling in [" KULDĪGA ", "Valmiera"]:
        response = await service.client.post(
            f"/calls/{call['call_id']}/applications",
            json=service.application_body(city=spelling),
        )
        assert response.status_code == 409, spelling
        assert response.json()["detail"][0]["type"] == "one_application_per_city"
    await service.submit(call["call_id"], city="Cēsis")
    assert await count_rows(service.dsn, "applications") == 3


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(service):
    call = await service.create_call()
    url = f"/calls/{call['call_id']}/applications"
    body = service.application_body(city="Saldus", population=10_000)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await service.client.post(url, json=body, headers=key)
    again = await service.client.post(url, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    token = {"Authorization": f"Bearer {again.json()['applicant_token']}"}
    assert (
        await service.client.get(f"/applications/{first.json()['application_id']}", headers=token)
    ).status_code == 200

    changed = await service.client.post(url, json={**body, "population": 11_000}, headers=key)
    assert changed.status_code == 422
    [error] = changed.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert error["type"] == "idempotency_key_reuse"
    assert await count_rows(service.dsn, "applications") == 1
    # The idempotency record keeps neither the key nor the token in clear.
    conn = await asyncpg.connect(service.dsn)
    try:
        row = await conn.fetchrow("SELECT key_hash, sealed_token FROM idempotency_keys")
        assert key["Idempotency-Key"].encode() not in bytes(row["key_hash"])
        assert first.json()["applicant_token"].encode() not in bytes(row["sealed_token"])
    finally:
        await conn.close()
    app_id = first.json()["application_id"]
    events = await service.wait_for_events([app_id], ["pearls.application.submitted"])
    assert [e.type for e in events] == ["pearls.application.submitted"]


async def test_a_too_short_idempotency_key_is_refused(service):
    call = await service.create_call()
    response = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        json=service.application_body(),
        headers={"Idempotency-Key": "abc"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


async def test_the_applicant_updates_while_the_call_is_open_then_no_more(service):
    call = await service.create_call()
    receipt = await service.submit(call["call_id"])
    url = f"/applications/{receipt['application_id']}"
    token = {"Authorization": f"Bearer {receipt['applicant_token']}"}
    updated = await service.client.patch(
        url, json={"population": 11_000, "themes": ["digital_participation"]}, headers=token
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["population"] == 11_000
    assert updated.json()["themes"] == ["digital_participation"]
    ineligible = await service.client.patch(url, json={"population": 1}, headers=token)
    assert ineligible.status_code == 422
    assert ineligible.json()["detail"][0]["loc"] == ["body", "population"]
    identity = await service.client.patch(url, json={"city_name": "Riga"}, headers=token)
    assert identity.status_code == 422
    assert (await service.client.get(url, headers=token)).json()["population"] == 11_000

    await service.close(call["call_id"])
    late = await service.client.patch(url, json={"population": 12_000}, headers=token)
    assert late.status_code == 409 and late.json()["detail"][0]["type"] == "submission_window"
    audit = await service.client.get(f"{url}/audit", headers=service.as_coordinator())
    assert [e["action"] for e in audit.json()] == ["submitted", "updated"]


async def test_the_applicant_withdraws_and_the_withdrawal_is_published(service):
    call = await service.create_call()
    receipt = await service.submit(call["call_id"])
    app_id = receipt["application_id"]
    token = {
        "Authorization": f"Bearer {receipt['applicant_token']}",
        "X-Correlation-ID": "corr-withdraw-1",
    }
    response = await service.client.post(
        f"/applications/{app_id}/withdraw", json={"reason": "Council elections"}, headers=token
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    twice = await service.client.post(f"/applications/{app_id}/withdraw", headers=token)
    assert twice.status_code == 409
    events = await service.wait_for_events([app_id], ["pearls.application.withdrawn"])
    withdrawn = next(e for e in events if e.type == "pearls.application.withdrawn")
    assert withdrawn.data["previous_status"] == "submitted"
    assert withdrawn.data["reason"] == "Council elections"
    assert withdrawn.correlation_id == "corr-withdraw-1"


async def test_a_submission_whose_transaction_fails_leaves_no_event_behind(service):
    call = await service.create_call()
    # A constraint that fails only at COMMIT, after the outbox row has been written.
    conn = await asyncpg.connect(service.dsn)
    try:
        await conn.execute(
            """
            CREATE FUNCTION refuse_failtown() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.city_name = 'Failtown' THEN RAISE EXCEPTION 'refused at commit'; END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_failtown AFTER INSERT ON applications
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_failtown();
            """
        )
    finally:
        await conn.close()
    with pytest.raises(asyncpg.RaiseError):
        await service.client.post(
            f"/calls/{call['call_id']}/applications",
            json=service.application_body(city="Failtown"),
            headers={"X-Correlation-ID": "corr-failtown"},
        )
    assert await count_rows(service.dsn, "applications") == 0
    assert await count_rows(service.dsn, "audit_log WHERE application_id IS NOT NULL") == 0
    assert await count_rows(service.dsn, "outbox WHERE headers::text LIKE '%corr-failtown%'") == 0

    # A later submission goes through, and once the relay has sent everything,
    # the topic holds its event and none of the failed one.
    ok = await service.submit(call["call_id"], city="Talsi", population=9_000)
    await service.wait_for_events([ok["application_id"]], ["pearls.application.submitted"])

    async def drained():
        return await count_rows(service.dsn, "outbox WHERE sent_at IS NULL") == 0

    await wait_for(drained, what="the relay to send everything")
    from pearls_shared.testing import read_topic
    from pearls_shared.topics import APPLICATIONS

    records = await read_topic(service.bootstrap, APPLICATIONS)
    assert not [r for r in records if b"corr-failtown" in b"".join(v for _, v in r.headers or ())]


async def test_concurrent_submissions_of_one_city_let_exactly_one_through(service):
    call = await service.create_call()
    url = f"/calls/{call['call_id']}/applications"
    responses = await asyncio.gather(
        *(
            service.client.post(url, json=service.application_body(city=spelling))
            for spelling in ("Cēsis", "CĒSIS", "cēsis ", "Cēsis")
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert {r.json()["detail"][0]["type"] for r in responses if r.status_code == 409} == {
        "one_application_per_city"
    }
    assert await count_rows(service.dsn, "applications") == 1


async def test_concurrent_retries_with_one_idempotency_key_get_one_answer(service):
    call = await service.create_call()
    url = f"/calls/{call['call_id']}/applications"
    body = service.application_body(city="Sigulda", population=11_000)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    responses = await asyncio.gather(
        *(service.client.post(url, json=body, headers=key) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert len({r.json()["application_id"] for r in responses}) == 1
    assert len({r.json()["applicant_token"] for r in responses}) == 1
    assert await count_rows(service.dsn, "applications") == 1


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        # Text the database could not store (a lone UTF-16 surrogate, legal as a JSON escape).
        ("motivation", "Culture \ud800 first", ["body", "motivation"]),
        # A refused value is echoed in the error, which must still be sent.
        ("country", "L\ud800", ["body", "country"]),
    ],
)
async def test_a_lone_surrogate_is_refused_naming_the_field(service, field, value, loc):
    call = await service.create_call()
    body = json.dumps(service.application_body(**{field: value}))  # escapes it as \\ud800
    response = await service.client.post(
        f"/calls/{call['call_id']}/applications",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert await count_rows(service.dsn, "applications") == 0


async def test_a_review_score_key_that_is_not_valid_unicode_is_refused(service):
    call = await service.create_call(reviews_required=1)
    receipt = await service.submit(call["call_id"])
    app_id = receipt["application_id"]
    assigned = await service.client.post(
        f"/applications/{app_id}/assignments",
        json={"reviewer_id": "rev-gdansk"},
        headers=service.as_coordinator(),
    )
    assert assigned.status_code == 201
    await service.close(call["call_id"])
    body = {"scores": {"relevance": 3, "commitment": 3, "x\udfff": 1}, "comment": "Fine."}
    response = await service.client.post(
        f"/applications/{app_id}/reviews",
        content=json.dumps(body).encode(),
        headers={**service.as_reviewer("rev-gdansk"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "scores"]


async def test_an_update_must_change_something_and_null_is_no_value(service):
    call = await service.create_call()
    receipt = await service.submit(call["call_id"])
    url = f"/applications/{receipt['application_id']}"
    token = {"Authorization": f"Bearer {receipt['applicant_token']}"}
    empty = await service.client.patch(url, json={}, headers=token)
    assert empty.status_code == 422, empty.text
    assert empty.json()["detail"][0]["loc"] == ["body"]
    null = await service.client.patch(url, json={"population": None}, headers=token)
    assert null.status_code == 422, null.text
    assert null.json()["detail"][0]["loc"] == ["body", "population"]
    audit = await service.client.get(f"{url}/audit", headers=service.as_coordinator())
    assert [e["action"] for e in audit.json()] == ["submitted"]


async def test_concurrent_updates_of_different_fields_both_stay(service):
    call = await service.create_call()
    receipt = await service.submit(call["call_id"])
    url = f"/applications/{receipt['application_id']}"
    token = {"Authorization": f"Bearer {receipt['applicant_token']}"}
    changes = [
        {"population": 11_111},
        {"themes": ["digital_participation"]},
        {"motivation": "Culture keeps our young people here."},
        {"organisation_name": "Kuldīga Culture Office"},
    ]
    responses = await asyncio.gather(
        *(service.client.patch(url, json=change, headers=token) for change in changes)
    )
    assert [r.status_code for r in responses] == [200] * len(changes)
    final = (await service.client.get(url, headers=token)).json()
    for change in changes:
        for name, value in change.items():
            assert final[name] == value, name
