"""Participants arrive from pearls.applications.v1 and get a mentor, exactly once."""

from __future__ import annotations

import asyncio

from pearls_shared.testing import wait_for

from .conftest import Service


async def test_accepted_application_gets_a_participant_and_an_assignment(service: Service) -> None:
    mentor = await service.register_mentor(languages=["et", "en"], country="EE")
    accepted = await service.join(city="Kuldīga", country="LV", languages=["lv", "en"])

    participant = await service.matched(accepted.application_id)
    assert participant["mentor"]["mentor_id"] == mentor["mentor_id"]
    explanation = participant["explanation"]
    assert explanation["shared_languages"] == ["en"]
    assert explanation["cross_border"] is True
    assert abs(sum(explanation["criteria"].values()) - explanation["score"]) < 1e-6
    assert set(explanation["constraints_met"]) == {"capacity", "shared_language", "not_own_city"}

    [assigned] = [
        e
        for e in await service.wait_for_events(
            [accepted.application_id], ["pearls.mentor.assigned"]
        )
        if e.type == "pearls.mentor.assigned"
    ]
    assert assigned.key == str(accepted.application_id)
    assert assigned.data["mentor"]["mentor_id"] == mentor["mentor_id"]
    assert assigned.data["contacts"][0]["email"] == accepted.contacts[0].email
    assert assigned.data["overridden_by_coordinator"] is False


async def test_duplicate_and_out_of_order_deliveries_change_nothing(service: Service) -> None:
    await service.register_mentor(capacity=5)
    first = service.accepted(city="Viljandi", country="EE", languages=["et", "en"])
    envelope = await service.publish(first)
    await service.matched(first.application_id)

    # The same event again (a redelivery), and an older acceptance of the same participant.
    await service.publish_envelope("pearls.applications.v1", envelope)
    older = first.model_copy(
        update={"decided_at": first.decided_at.replace(year=first.decided_at.year - 1)}
    )
    await service.publish(older)
    # A withdrawal that overtakes its acceptance, then the acceptance.
    late = service.accepted(city="Ystad", country="SE", languages=["sv", "en"])
    await service.publish(service.withdrawn(late))
    await wait_for(lambda: service.participant_row(late.application_id), what="tombstone")
    await service.publish(late)
    # A marker participant published last: once it is known, everything before it was read.
    marker = await service.join(city="Husum", country="DE", languages=["de", "en"])
    await service.matched(marker.application_id)
    await asyncio.sleep(0.5)  # one more matching tick

    assignments = await service.fetch(
        "SELECT participant_id FROM assignments WHERE participant_id = ANY($1::uuid[])",
        [first.application_id, late.application_id],
    )
    assert [r["participant_id"] for r in assignments] == [first.application_id]
    row = await service.participant_row(late.application_id)
    assert row is not None and row["status"] == "withdrawn"
    events = await service.events_about([first.application_id, late.application_id])
    assert [e.type for e in events] == ["pearls.mentor.assigned"]
    handled = await service.fetch(
        "SELECT count(*) AS n FROM inbox WHERE event_id = $1", envelope.id
    )
    assert handled[0]["n"] == 1


async def test_withdrawal_frees_the_mentors_place(service: Service) -> None:
    mentor = await service.register_mentor(capacity=1)
    first = await service.join(city="Kuldīga", country="LV")
    await service.matched(first.application_id)
    second = await service.join(city="Jelenia Góra", country="PL", languages=["pl", "en"])

    async def waiting() -> dict[str, object] | None:
        p = await service.participant(second.application_id)
        return p if p["waiting"] else None

    waits = await wait_for(waiting, what="the second participant waiting")
    assert waits["status"] == "waiting"
    assert waits["waiting"]["reasons"] == ["all_full"]
    await service.wait_for_events([second.application_id], ["pearls.mentor.unmatched"])

    await service.publish(service.withdrawn(first))
    now_matched = await service.matched(second.application_id)
    assert now_matched["mentor"]["mentor_id"] == mentor["mentor_id"]
    events = await service.wait_for_events(
        [first.application_id], ["pearls.mentor.assigned", "pearls.mentor.unassigned"]
    )
    [unassigned] = [e for e in events if e.type == "pearls.mentor.unassigned"]
    assert unassigned.data["reason_code"] == "participant_withdrawn"
    load = await service.client.get(f"/mentors/{mentor['mentor_id']}", headers=service.coordinator)
    assert load.json()["load"] == 1
    # Told once: the unmatched notice is not repeated on every matching tick.
    unmatched = [
        e
        for e in await service.events_about([second.application_id])
        if e.type == "pearls.mentor.unmatched"
    ]
    assert len(unmatched) == 1
