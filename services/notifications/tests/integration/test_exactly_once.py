"""Never twice, never lost: redelivered events, a mail server that goes away and
comes back, temporary (451) and permanent (550) refusals."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration]

ACCEPTED = "pearls.application.accepted"
AUTH = {"Authorization": "Bearer test-coordinator-token"}


async def deliveries(service: Any, tag: str) -> list[Any]:
    return await service.fetch(
        "SELECT recipient, status, attempts, last_error, smtp_code, message_id, event_id"
        " FROM deliveries WHERE recipient LIKE $1 ORDER BY recipient",
        f"%{tag}%",
    )


async def test_the_same_event_delivered_twice_sends_each_email_once(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    await start_service()
    event = personalize(sample(ACCEPTED))
    envelope = await publisher.publish(event)
    await publisher.publish(event, envelope=envelope)  # the same CloudEvent again
    # A later event on the same key (same partition) is handled after both copies.
    marker = personalize(
        sample("pearls.application.waitlisted"), application_id=str(event.application_id)
    )
    await publisher.publish(marker)

    async def marker_arrived() -> bool:
        subjects = [str(r.message()["Subject"]) for r in smtp_sink.tagged(tag)]
        return sum("waitlist" in s for s in subjects) == 2

    await wait_for(marker_arrived, within=60, what="the e-mails of the later event")
    counts = smtp_sink.counts(tag)
    assert len(counts) == 4  # 2 contacts x (accepted, waitlisted)
    assert set(counts.values()) == {1}


async def test_mail_server_down_for_a_while_then_back_loses_nothing_and_doubles_nothing(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    smtp_sink.stop()
    service = await start_service()
    events = [personalize(sample(ACCEPTED)) for _ in range(5)]
    for event in events:
        await publisher.publish(event)

    async def all_tried_and_deferred() -> bool:
        rows = await deliveries(service, tag)
        return len(rows) == 10 and all(
            r["status"] == "pending" and r["attempts"] >= 2 and r["last_error"] for r in rows
        )

    await wait_for(all_tried_and_deferred, within=60, what="every e-mail tried and deferred")
    assert smtp_sink.tagged(tag) == []

    smtp_sink.start()

    async def all_sent() -> bool:
        rows = await deliveries(service, tag)
        return all(r["status"] == "sent" for r in rows)

    await wait_for(all_sent, within=60, what="every e-mail sent once the server is back")
    counts = smtp_sink.counts(tag)
    rows = await deliveries(service, tag)
    assert set(counts) == {(r["recipient"], r["message_id"]) for r in rows}
    assert len(counts) == 10 and set(counts.values()) == {1}


@pytest.mark.parametrize(
    "temporary", ["451 4.7.1 greylisted, try again later", "421 4.3.2 service not available"]
)
async def test_a_permanent_refusal_is_recorded_and_announced_and_blocks_no_one(
    temporary: str,
    start_service: Any,
    publisher: Any,
    smtp_sink: Any,
    tag: str,
    personalize: Any,
    kafka_bootstrap_servers: str,
) -> None:
    first = personalize(sample(ACCEPTED))
    refused = next(c.email for c in first.contacts if c.role == "primary")
    deferred = next(c.email for c in first.contacts if c.role == "backup")
    smtp_sink.handler.refuse[refused] = "550 5.1.1 mailbox unavailable"
    smtp_sink.handler.refuse[deferred] = temporary
    service = await start_service()
    others = [personalize(sample(ACCEPTED)) for _ in range(3)]
    for event in [first, *others]:
        await publisher.publish(event)

    async def settled() -> list[Any] | None:
        rows = {r["recipient"]: r for r in await deliveries(service, tag)}
        if len(rows) != 8:
            return None
        done = rows[refused]["status"] == "failed" and rows[deferred]["attempts"] >= 2
        rest = [r for k, r in rows.items() if k not in (refused, deferred)]
        return list(rows.values()) if done and all(r["status"] == "sent" for r in rest) else None

    rows = await wait_for(settled, within=60, what="550 failed, 451 retrying, the rest sent")
    failed = next(r for r in rows if r["recipient"] == refused)
    assert failed["smtp_code"] == 550 and "mailbox unavailable" in failed["last_error"]
    assert smtp_sink.to(refused) == [] and smtp_sink.to(deferred) == []
    assert len(smtp_sink.tagged(tag)) == 6

    # The greylisting ends: the deferred e-mail arrives, once.
    del smtp_sink.handler.refuse[deferred]

    async def deferred_arrived() -> bool:
        return len(smtp_sink.to(deferred)) == 1

    await wait_for(deferred_arrived, within=60, what="the deferred e-mail after the 451s")

    async def failure_announced() -> dict[str, Any] | None:
        for record in await read_topic(kafka_bootstrap_servers, NOTIFICATIONS):
            data = json.loads(record.value)
            if data.get("recipient") == refused and data.get("message_id") == failed["message_id"]:
                headers = dict(record.headers)
                if headers.get("ce_type") == b"pearls.notification.failed":
                    return dict(data)
        return None

    announced = await wait_for(failure_announced, within=60, what="pearls.notification.failed")
    assert announced["permanent"] is True and announced["smtp_code"] == 550
    assert announced["cause_event_type"] == ACCEPTED
    uuid.UUID(announced["notification_id"])
    assert len(smtp_sink.counts(tag)) == 7 and set(smtp_sink.counts(tag).values()) == {1}


async def test_a_spent_retry_budget_is_recorded_as_a_temporary_failure(
    start_service: Any,
    publisher: Any,
    smtp_sink: Any,
    tag: str,
    personalize: Any,
    kafka_bootstrap_servers: str,
) -> None:
    smtp_sink.stop()
    service = await start_service(retry_max_attempts=3)
    await publisher.publish(personalize(sample(ACCEPTED)))

    async def both_failed() -> list[Any] | None:
        rows = await deliveries(service, tag)
        ok = len(rows) == 2 and all(r["status"] == "failed" for r in rows)
        return rows if ok else None

    rows = await wait_for(both_failed, within=60, what="the budget spent, both failed")
    assert {r["attempts"] for r in rows} == {3}
    ids = {r["message_id"] for r in rows}

    async def announced() -> list[dict[str, Any]] | None:
        found = [
            json.loads(r.value)
            for r in await read_topic(kafka_bootstrap_servers, NOTIFICATIONS)
            if dict(r.headers).get("ce_type") == b"pearls.notification.failed"
            and json.loads(r.value).get("message_id") in ids
        ]
        return found if len(found) == 2 else None

    for data in await wait_for(announced, within=60, what="two pearls.notification.failed"):
        assert data["permanent"] is False and data["attempts"] == 3 and data["smtp_code"] is None


async def test_an_email_whose_announcement_cannot_be_recorded_is_never_sent_again_and_again(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    # A CloudEvent id longer than the contract's cause_event_id allows: were that found
    # only after the server's 250, every retry would send the e-mail once more.
    service = await start_service()
    event = personalize(sample(ACCEPTED))
    envelope = envelope_for(
        event, correlation_id="long-id", event_id=f"{uuid.uuid4()}-" + "x" * 250
    )
    await publisher.publish(event, envelope=envelope)

    async def tried_three_times() -> bool:
        rows = await service.fetch(
            "SELECT attempts FROM deliveries WHERE event_id = $1", envelope.id
        )
        return len(rows) == 2 and all(r["attempts"] >= 3 for r in rows)

    await wait_for(tried_three_times, within=60, what="several attempts at both e-mails")
    assert smtp_sink.tagged(tag) == []


class _Exploding:
    """An SMTP client that fails in a way the sender does not foresee."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, *args: Any) -> Any:
        self.calls += 1
        raise RuntimeError("the mail library broke")

    async def close(self) -> None:
        return None


async def test_a_delivery_that_keeps_failing_unexpectedly_stops_is_recorded_and_announced(
    start_service: Any,
    publisher: Any,
    smtp_sink: Any,
    tag: str,
    personalize: Any,
    kafka_bootstrap_servers: str,
) -> None:
    service = await start_service(retry_max_attempts=3)
    exploding = _Exploding()
    sender = service.app.state.sender
    sender.clients[:] = [exploding] * len(sender.clients)  # every worker's connection
    await publisher.publish(personalize(sample(ACCEPTED)))

    async def both_failed() -> list[Any] | None:
        rows = await deliveries(service, tag)
        ok = len(rows) == 2 and all(r["status"] == "failed" for r in rows)
        return rows if ok else None

    rows = await wait_for(both_failed, within=60, what="both e-mails given up as failed")
    assert {r["attempts"] for r in rows} == {3}
    assert all("the mail library broke" in r["last_error"] for r in rows)
    assert exploding.calls == 6  # three attempts each, then no more
    # Visible in the coordinators' delivery log.
    logged = await service.client.get(
        "/deliveries", params={"recipient": rows[0]["recipient"]}, headers=AUTH
    )
    assert logged.status_code == 200
    assert [d["status"] for d in logged.json()] == ["failed"]
    ids = {r["message_id"] for r in rows}

    async def announced() -> list[dict[str, Any]] | None:
        found = [
            json.loads(r.value)
            for r in await read_topic(kafka_bootstrap_servers, NOTIFICATIONS)
            if dict(r.headers).get("ce_type") == b"pearls.notification.failed"
            and json.loads(r.value).get("message_id") in ids
        ]
        return found if len(found) == 2 else None

    for data in await wait_for(announced, within=60, what="two pearls.notification.failed"):
        assert data["permanent"] is False and data["attempts"] == 3
        assert data["reason"].startswith("unexpected error")
    assert smtp_sink.tagged(tag) == []


async def test_a_failure_that_cannot_even_be_announced_still_ends_as_failed(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    # The cause's id is too long for any announcement: neither sent nor failed can be
    # recorded. The budget still ends the attempts; the log row says failed and why.
    service = await start_service(retry_max_attempts=3)
    event = personalize(sample(ACCEPTED))
    envelope = envelope_for(
        event, correlation_id="long-id", event_id=f"{uuid.uuid4()}-" + "x" * 250
    )
    await publisher.publish(event, envelope=envelope)

    async def both_failed() -> list[Any] | None:
        rows = await service.fetch(
            "SELECT status, attempts, last_error FROM deliveries WHERE event_id = $1", envelope.id
        )
        ok = len(rows) == 2 and all(r["status"] == "failed" for r in rows)
        return rows if ok else None

    rows = await wait_for(both_failed, within=60, what="both e-mails given up as failed")
    assert {r["attempts"] for r in rows} == {3}
    assert all(r["last_error"].startswith("unexpected error") for r in rows)
    assert smtp_sink.tagged(tag) == []
