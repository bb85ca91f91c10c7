"""The coordinators' API (token auth, delivery log, resend, preferences) and the
recipients' one-click unsubscribe and daily digest, against the running service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from pearls_shared.events.samples import sample
from pearls_shared.testing import wait_for

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": "Bearer test-coordinator-token"}
ACCEPTED = "pearls.application.accepted"
REACHED = "pearls.plan.milestone_reached"


async def test_coordinator_endpoints_need_the_token(start_service: Any) -> None:
    service = await start_service()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        response = await service.client.get("/deliveries", headers=headers)
        assert response.status_code == 401
        assert "Authorization" in response.json()["detail"]
    assert (await service.client.get("/deliveries", headers=AUTH)).status_code == 200
    assert (await service.client.get("/healthz")).status_code == 200
    assert (await service.client.get("/readyz")).json() == {"status": "ready"}


async def test_more_coordinators_and_the_deprecated_token_settings(start_service: Any) -> None:
    import hashlib

    other = hashlib.sha256(b"second-token").hexdigest()
    service = await start_service(
        coordinators=[
            {"id": "test-coordinator", "token": "test-coordinator-token"},
            {"id": "second", "token_sha256": other},
        ],
        api_token_sha256=hashlib.sha256(b"fourth-token").hexdigest(),
        coordinator_tokens="third-token",
    )
    for token in ("test-coordinator-token", "second-token", "third-token", "fourth-token"):
        headers = {"Authorization": f"Bearer {token}"}
        assert (await service.client.get("/deliveries", headers=headers)).status_code == 200
    wrong = {"Authorization": f"Bearer sha256:{other}"}  # the digest itself is no token
    assert (await service.client.get("/deliveries", headers=wrong)).status_code == 401


async def test_api_closed_when_no_token_is_configured(start_service: Any) -> None:
    service = await start_service(coordinators=[])
    response = await service.client.get("/deliveries", headers=AUTH)
    assert response.status_code == 401


async def test_delivery_log_resend_of_a_failed_email(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    event = personalize(sample(ACCEPTED))
    refused = event.contacts[0].email
    smtp_sink.handler.refuse[refused] = "550 5.1.1 no such mailbox"
    service = await start_service()
    envelope = await publisher.publish(event)

    async def log_for_event() -> list[dict[str, Any]] | None:
        r = await service.client.get("/deliveries", params={"event_id": envelope.id}, headers=AUTH)
        rows = r.json()
        settled = len(rows) == 2 and {d["status"] for d in rows} == {"sent", "failed"}
        return rows if settled else None

    rows = await wait_for(log_for_event, within=60, what="one sent, one failed in the log")
    failed = next(d for d in rows if d["status"] == "failed")
    assert failed["recipient"] == refused and failed["smtp_code"] == 550
    assert failed["template"] == "application_accepted" and failed["category"] == "essential"

    by_recipient = await service.client.get(
        "/deliveries", params={"recipient": refused.upper()}, headers=AUTH
    )
    assert [d["id"] for d in by_recipient.json()] == [failed["id"]]

    sent = next(d for d in rows if d["status"] == "sent")
    conflict = await service.client.post(f"/deliveries/{sent['id']}/resend", headers=AUTH)
    assert conflict.status_code == 409 and conflict.json()["detail"].startswith("status:")
    missing = await service.client.post(
        "/deliveries/00000000-0000-0000-0000-000000000000/resend", headers=AUTH
    )
    assert missing.status_code == 404
    bad = await service.client.post("/deliveries/not-a-uuid/resend", headers=AUTH)
    assert bad.status_code == 422

    # The mailbox is fixed; the coordinator resends; it arrives once, same Message-ID.
    del smtp_sink.handler.refuse[refused]
    resent = await service.client.post(f"/deliveries/{failed['id']}/resend", headers=AUTH)
    assert resent.status_code == 202 and resent.json()["status"] == "pending"

    async def arrived() -> bool:
        return len(smtp_sink.to(refused)) == 1

    await wait_for(arrived, within=60, what="the resent e-mail")
    assert smtp_sink.to(refused)[0].message_id == failed["message_id"]
    one = await service.client.get(f"/deliveries/{failed['id']}", headers=AUTH)
    assert one.json()["status"] == "sent"


async def test_preferences_api_and_essential_mail_cannot_be_switched_off(
    start_service: Any,
) -> None:
    service = await start_service()
    who = "Someone@Example.org"
    got = await service.client.get(f"/preferences/{who}", headers=AUTH)
    assert got.json() == {
        "recipient": "someone@example.org",
        "categories": {"progress": "immediate", "sessions": "immediate"},
    }
    put = await service.client.put(
        f"/preferences/{who}", json={"category": "sessions", "mode": "off"}, headers=AUTH
    )
    assert put.status_code == 200 and put.json()["categories"]["sessions"] == "off"
    essential = await service.client.put(
        f"/preferences/{who}", json={"category": "essential", "mode": "off"}, headers=AUTH
    )
    assert essential.status_code == 422 and "essential" in essential.json()["detail"]
    wrong = await service.client.put(
        f"/preferences/{who}", json={"category": "progress", "mode": "weekly"}, headers=AUTH
    )
    assert wrong.status_code == 422
    assert any("mode" in e["loc"] for e in wrong.json()["detail"])
    not_email = await service.client.get("/preferences/not-an-address", headers=AUTH)
    assert not_email.status_code == 422


async def test_one_click_unsubscribe_stops_progress_mail_but_never_essential_mail(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    reached = personalize(sample(REACHED))
    mentor = reached.mentor.email
    await publisher.publish(reached)
    await wait_for(lambda: _truthy(smtp_sink.to(mentor)), within=60, what="the progress e-mail")
    msg = smtp_sink.to(mentor)[0].message()
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(msg["List-Unsubscribe"]).strip("<>")
    assert url in msg.get_body(("plain",)).get_content()
    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert query["recipient"] == mentor and query["category"] == "progress"

    # A GET (link scanners) shows a page and changes nothing.
    page = await service.client.get(parsed.path, params=query)
    assert page.status_code == 200 and "<form" in page.text
    prefs = await service.client.get(f"/preferences/{mentor}", headers=AUTH)
    assert prefs.json()["categories"]["progress"] == "immediate"

    # Tampered links are refused with the field at fault.
    for field, value in (("token", "0" * 64), ("recipient", "other@example.org")):
        bad = await service.client.post(parsed.path, params={**query, field: value})
        assert bad.status_code == 400 and bad.json()["detail"].startswith("token:")

    # RFC 8058 one-click POST.
    done = await service.client.post(
        parsed.path,
        params=query,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    prefs = await service.client.get(f"/preferences/{mentor}", headers=AUTH)
    assert prefs.json()["categories"]["progress"] == "off"

    # Progress to the same mentor is now suppressed; essential mail still goes.
    later = reached.model_copy(update={"milestones_reached": 2})
    overdue = personalize(sample("pearls.plan.milestone_overdue"))
    overdue = overdue.model_copy(update={"mentor": reached.mentor})
    e_later = await publisher.publish(later)
    await publisher.publish(overdue)

    async def overdue_arrived() -> bool:
        return len(smtp_sink.to(mentor)) == 2

    await wait_for(overdue_arrived, within=60, what="the essential e-mail to the mentor")
    subjects = [str(r.message()["Subject"]) for r in smtp_sink.to(mentor)]
    assert subjects[1].startswith("Milestone overdue")
    assert smtp_sink.to(mentor)[1].message()["List-Unsubscribe"] is None
    log = await service.client.get("/deliveries", params={"event_id": e_later.id}, headers=AUTH)
    assert [d["status"] for d in log.json()] == ["suppressed"]


async def test_daily_digest_bundles_held_progress_mail_into_one_email(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    first = personalize(sample(REACHED))
    mentor = first.mentor.email
    put = await service.client.put(
        f"/preferences/{mentor}", json={"category": "progress", "mode": "digest"}, headers=AUTH
    )
    assert put.status_code == 200
    second = first.model_copy(update={"milestones_reached": 2})
    envelopes = [await publisher.publish(first), await publisher.publish(second)]

    async def held() -> bool:
        rows = await service.fetch(
            "SELECT status FROM deliveries WHERE event_id = ANY($1::text[])",
            [e.id for e in envelopes],
        )
        return [r["status"] for r in rows] == ["digest", "digest"]

    await wait_for(held, within=60, what="both progress items held for the digest")
    assert smtp_sink.to(mentor) == []

    sender = service.app.state.sender
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert await sender.compose_digests(cutoff) == 1
    assert await sender.compose_digests(cutoff) == 0  # one digest per recipient per day

    async def digest_arrived() -> bool:
        return len(smtp_sink.to(mentor)) == 1

    await wait_for(digest_arrived, within=60, what="the digest e-mail")
    msg = smtp_sink.to(mentor)[0].message()
    assert str(msg["Subject"]).startswith("Your BSR Cultural Pearls digest")
    text = msg.get_body(("plain",)).get_content()
    assert text.count("reached a milestone") == 2 and "(2 update(s))" in text
    assert text.count("Dear ") == 1  # the items are bundled without their own greeting
    rows = await service.fetch(
        "SELECT status FROM deliveries WHERE event_id = ANY($1::text[])",
        [e.id for e in envelopes],
    )
    assert [r["status"] for r in rows] == ["digested", "digested"]


async def test_opting_out_drops_the_items_already_held_for_the_digest(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    reached = personalize(sample(REACHED))
    mentor = reached.mentor.email
    put = await service.client.put(
        f"/preferences/{mentor}", json={"category": "progress", "mode": "digest"}, headers=AUTH
    )
    assert put.status_code == 200
    envelope = await publisher.publish(reached)

    async def held() -> bool:
        rows = await service.fetch("SELECT status FROM deliveries WHERE event_id = $1", envelope.id)
        return [r["status"] for r in rows] == ["digest"]

    await wait_for(held, within=60, what="the progress item held for the digest")
    off = await service.client.put(
        f"/preferences/{mentor}", json={"category": "progress", "mode": "off"}, headers=AUTH
    )
    assert off.status_code == 200
    sender = service.app.state.sender
    assert await sender.compose_digests(datetime.now(UTC) + timedelta(seconds=1)) == 0
    rows = await service.fetch("SELECT status FROM deliveries WHERE event_id = $1", envelope.id)
    assert [r["status"] for r in rows] == ["suppressed"]
    assert smtp_sink.to(mentor) == []


async def test_a_digest_to_a_long_address_goes_out_once(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str
) -> None:
    # A valid address of 200+ characters: the digest's cause id must still fit the contract.
    mentor = f"mentor.{'k' * 30}+{tag}@{'a' * 60}.{'b' * 60}.{'c' * 30}.example"
    service = await start_service()
    put = await service.client.put(
        f"/preferences/{mentor}", json={"category": "progress", "mode": "digest"}, headers=AUTH
    )
    assert put.status_code == 200
    reached = sample(REACHED)
    reached = reached.model_copy(
        update={
            "participant_id": uuid.uuid4(),
            "mentor": reached.mentor.model_copy(update={"email": mentor}),
        }
    )
    envelope = await publisher.publish(reached)

    async def held() -> bool:
        rows = await service.fetch("SELECT status FROM deliveries WHERE event_id = $1", envelope.id)
        return [r["status"] for r in rows] == ["digest"]

    await wait_for(held, within=60, what="the progress item held for the digest")
    sender = service.app.state.sender
    assert await sender.compose_digests(datetime.now(UTC) + timedelta(seconds=1)) == 1

    async def digest_sent() -> bool:
        rows = await service.fetch(
            "SELECT status FROM deliveries WHERE recipient = $1 AND template = 'daily_digest'",
            mentor,
        )
        return [r["status"] for r in rows] == ["sent"]

    await wait_for(digest_sent, within=60, what="the digest recorded as sent")
    assert len(smtp_sink.to(mentor)) == 1


async def _truthy(value: Any) -> Any:
    return value


async def test_personal_data_of_finished_emails_is_erased_after_the_retention(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    event = personalize(sample(ACCEPTED))
    refused = event.contacts[0].email
    smtp_sink.handler.refuse[refused] = "550 5.1.1 no such mailbox"
    service = await start_service()
    envelope = await publisher.publish(event)

    async def settled() -> bool:
        rows = await service.fetch("SELECT status FROM deliveries WHERE event_id = $1", envelope.id)
        return sorted(r["status"] for r in rows) == ["failed", "sent"]

    await wait_for(settled, within=60, what="one sent, one failed")
    sender = service.app.state.sender
    assert await sender.erase_old_contexts(datetime.now(UTC)) == 0  # nothing is 90 days old
    later = datetime.now(UTC) + timedelta(days=91)
    # Other events of the shared topics may have finished e-mails in this database
    # too; what matters is what happened to this event's two rows.
    assert await sender.erase_old_contexts(later) >= 1
    rows = await service.fetch(
        "SELECT status, recipient, recipient_name, context, message_id FROM deliveries"
        " WHERE event_id = $1 ORDER BY status",
        envelope.id,
    )
    failed, sent = rows
    assert sent["context"] == {} and sent["recipient_name"] == ""
    assert sent["recipient"] and sent["message_id"]  # the log row stays
    assert failed["context"] != {} and failed["recipient_name"]  # kept for a resend
