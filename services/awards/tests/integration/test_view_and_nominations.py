"""The participants' view from events: eligibility, nominations, redeliveries, rebuild."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from typing import Any

import pytest

from pearls_awards.adapters import repository as repo
from pearls_shared.db import connect
from pearls_shared.testing import wait_for

from .conftest import Service

pytestmark = pytest.mark.integration


async def test_milestones_arriving_as_events_make_a_participant_eligible_and_nominated(
    service: Service,
) -> None:
    round_ = await service.open_round()
    p = service.participant()
    await service.publish(p.accepted)
    await service.publish(service.approved(p, milestones=2))
    await service.view(p.id, lambda v: v["plan_status"] == "approved")
    assert str(p.id) not in await service.nominees(round_["round_id"])  # 0 of 2 reached

    await service.publish(service.reached(p, 0))  # 1 of 2: the round asks for 50 %

    async def nominated() -> bool:
        return str(p.id) in await service.nominees(round_["round_id"])

    await wait_for(nominated, what="the automatic nomination")
    [event] = await wait_for(
        lambda: _of_type(service, p.id, "pearls.award.nominated"), what="pearls.award.nominated"
    )
    assert event.data["round_id"] == round_["round_id"]
    assert event.data["city_name"] == "Kuldīga"
    # A round opened later nominates the participants eligible already, at once.
    later = await service.open_round()
    assert later["nominated"] >= 1
    assert str(p.id) in await service.nominees(later["round_id"])


async def _of_type(service: Service, pid: Any, event_type: str) -> list[Any]:
    return [e for e in await service.events_about([pid]) if e.type == event_type]


async def test_duplicates_and_redeliveries_change_nothing(service: Service) -> None:
    round_ = await service.open_round()
    p = service.participant(city="Viljandi", country="EE")
    envelopes = [await service.publish(p.accepted)]
    envelopes.append(await service.publish(service.approved(p, milestones=2)))
    envelopes.append(await service.publish(service.reached(p, 0)))
    envelopes.append(await service.publish(service.reached(p, 1)))
    before = await service.view(p.id, lambda v: v["milestones_reached"] == 2)
    # Everything again, newest first; and an older acceptance.
    for envelope, topic in reversed(
        list(zip(envelopes, ["pearls.applications.v1"] + ["pearls.mentoring.v1"] * 3, strict=True))
    ):
        await service.publish_envelope(topic, envelope)
    older = p.accepted.model_copy(
        update={"decided_at": p.accepted.decided_at.replace(year=2020), "city_name": "Old name"}
    )
    await service.publish(older)
    marker = service.participant(city="Ystad", country="SE")
    await service.publish(marker.accepted)
    await service.view(marker.id)  # everything published before it was read
    await asyncio.sleep(0.3)

    assert await service.view(p.id) == before
    nominated = await _of_type(service, p.id, "pearls.award.nominated")
    assert len(nominated) == 1 and nominated[0].data["round_id"] == round_["round_id"]
    rows = await service.fetch(
        "SELECT count(*) AS n FROM inbox WHERE event_id = ANY($1::text[])",
        [e.id for e in envelopes],
    )
    assert rows[0]["n"] == len(envelopes)


async def test_the_view_rebuilt_from_the_topics_equals_the_live_one(
    service: Service, postgres_server: Any
) -> None:
    mentor = service.mentor_ref()
    stories = [
        service.participant(city=c, country=cc)
        for c, cc in (("Kuldīga", "LV"), ("Husum", "DE"), ("Ystad", "SE"))
    ]
    for p in stories:
        await service.eligible(p, reached=1)
    await service.publish(service.assigned(stories[0], mentor))
    withdrawn = stories[2].accepted
    from pearls_shared.events.applications import ApplicationWithdrawn

    await service.publish(
        ApplicationWithdrawn.model_validate(
            {
                "application_id": withdrawn.application_id,
                "call_id": withdrawn.call_id,
                "withdrawn_at": withdrawn.decided_at,
                "previous_status": "accepted",
                "city_name": withdrawn.city_name,
                "country": withdrawn.country,
                "contacts": withdrawn.contacts,
            }
        )
    )
    await service.view(stories[0].id, lambda v: v["current_mentor_id"] == mentor["mentor_id"])
    await service.view(stories[2].id, lambda v: v["withdrawn"])
    ids = [p.id for p in stories]

    live_conn = await connect(service.dsn)
    try:
        live = await repo.views(live_conn, ids)
    finally:
        await live_conn.close()

    # Into empty tables, by the operator's command.
    empty = postgres_server.new_database("awards_rebuilt")
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pearls_awards",
        "rebuild",
        env={
            **os.environ,
            "PEARLS_AWARDS_DATABASE_URL": empty,
            "KAFKA_BOOTSTRAP_SERVERS": service.kafka.bootstrap_servers,
            "PEARLS_AWARDS_LOG_LEVEL": "WARNING",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await command.communicate()
    assert command.returncode == 0, output.decode()
    applied = int(output.decode().rsplit("view rebuilt from ", 1)[1].split()[0])
    conn = await connect(empty)
    try:
        rebuilt = await repo.views(conn, ids)
    finally:
        await conn.close()
    assert applied >= 3 * 3 + 2
    assert set(rebuilt) == set(ids)
    for pid in ids:
        assert dataclasses.asdict(rebuilt[pid]) == dataclasses.asdict(live[pid])
