"""The contact directory: built from events, kept current, erased when no more mail is owed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pearls_shared.events.registry import model_for
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for
from pearls_shared.testing import wait_for

pytestmark = [pytest.mark.integration]


async def test_contacts_are_recorded_replaced_and_erased_on_withdrawal(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    submitted = personalize(sample("pearls.application.submitted"))
    app_id = submitted.application_id
    await publisher.publish(submitted)

    async def contacts() -> list[str]:
        rows = await service.fetch(
            "SELECT email FROM participant_contacts WHERE participant_id = $1 ORDER BY email",
            app_id,
        )
        return [r["email"] for r in rows]

    await wait_for(contacts, within=60, what="contacts from the submission")
    assert await contacts() == sorted(c.email for c in submitted.contacts)

    # Staff changed: the accepted event's list replaces the old one.
    accepted = personalize(sample("pearls.application.accepted"), application_id=str(app_id))
    await publisher.publish(accepted)

    async def replaced() -> bool:
        return await contacts() == sorted(c.email for c in accepted.contacts)

    await wait_for(replaced, within=60, what="the contact list replaced")

    withdrawn = personalize(sample("pearls.application.withdrawn"), application_id=str(app_id))
    await publisher.publish(withdrawn)

    async def erased_and_told() -> bool:
        told = all(smtp_sink.to(c.email) for c in withdrawn.contacts)
        return told and await contacts() == []

    await wait_for(erased_and_told, within=60, what="erasure, with the withdrawal e-mail sent")

    # A late, older event (another partition) does not bring the addresses back.
    late = personalize(sample("pearls.application.waitlisted"), application_id=str(app_id))
    envelope = envelope_for(
        late, correlation_id="late", time=datetime.now(UTC) - timedelta(seconds=1)
    )
    await publisher.publish(late, envelope=envelope)

    async def late_handled() -> bool:
        return all(smtp_sink.to(c.email) for c in late.contacts)

    await wait_for(late_handled, within=60, what="the late event handled (its own e-mail)")
    assert await contacts() == []


async def test_an_older_event_never_overwrites_a_newer_mentor_record(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    mentor_id = uuid.uuid4()
    newer = personalize(sample("pearls.mentor.registered"), mentor_id=str(mentor_id))
    older = personalize(sample("pearls.mentor.registered"), mentor_id=str(mentor_id))
    now = datetime.now(UTC)
    await publisher.publish(newer, envelope=envelope_for(newer, correlation_id="n", time=now))
    await publisher.publish(
        older, envelope=envelope_for(older, correlation_id="o", time=now - timedelta(seconds=1))
    )

    async def both_welcomed() -> bool:
        return bool(smtp_sink.to(newer.email)) and bool(smtp_sink.to(older.email))

    await wait_for(both_welcomed, within=60, what="both registrations handled")
    rows = await service.fetch("SELECT email FROM mentors WHERE mentor_id = $1", mentor_id)
    assert [r["email"] for r in rows] == [newer.email]


async def test_a_plan_without_a_named_mentor_goes_to_the_assigned_mentor(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    service = await start_service()
    assigned = personalize(sample("pearls.mentor.assigned"))
    mentor_ref = assigned.mentor.model_copy(update={"mentor_id": uuid.uuid4()})
    assigned = assigned.model_copy(update={"mentor": mentor_ref})
    await publisher.publish(assigned)
    plan = personalize(
        sample("pearls.plan.submitted"), participant_id=str(assigned.participant_id), mentor=None
    )
    await publisher.publish(plan)
    mentor = assigned.mentor.email

    async def reviewed_by_mentor() -> bool:
        subjects = [str(r.message()["Subject"]) for r in smtp_sink.to(mentor)]
        return any("Action plan to review" in s or "Aktionsplan" in s for s in subjects)

    await wait_for(reviewed_by_mentor, within=60, what="the plan e-mail to the assigned mentor")
    rows = await service.fetch(
        "SELECT m.email FROM mentor_assignments a JOIN mentors m USING (mentor_id)"
        " WHERE a.participant_id = $1",
        assigned.participant_id,
    )
    assert [r["email"] for r in rows] == [mentor]


async def test_one_address_twice_in_other_case_is_one_contact_and_one_email(
    start_service: Any, publisher: Any, smtp_sink: Any, personalize: Any
) -> None:
    # The contract lets "Inese@…" and "inese@…" stand side by side; to us they are one.
    data = sample("pearls.application.submitted").to_data()
    primary = data["contacts"][0]
    local, domain = primary["email"].split("@")
    data["contacts"].append({**primary, "email": f"{local.upper()}@{domain}", "role": "backup"})
    submitted = personalize(model_for("pearls.application.submitted").model_validate(data))
    service = await start_service()
    await publisher.publish(submitted)
    address = submitted.contacts[0].email.lower()

    async def receipt() -> bool:
        return bool(smtp_sink.to(address))

    await wait_for(receipt, within=60, what="the receipt despite the duplicate address")
    rows = await service.fetch(
        "SELECT email, role FROM participant_contacts WHERE participant_id = $1 ORDER BY email",
        submitted.application_id,
    )
    expected = sorted({c.email.lower() for c in submitted.contacts})
    assert [r["email"] for r in rows] == expected
    assert {r["email"]: r["role"] for r in rows}[address] == "primary"
    assert len(smtp_sink.to(address)) == 1
