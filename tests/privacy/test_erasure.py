"""Erasure (GDPR art. 17) across every service, on real Kafka and PostgreSQL.

A person goes through the whole flow (application submitted and accepted, mentoring
participant with a mentor, the contact directory and e-mails, the awards' view), is
erased by e-mail address, and then no text, JSON or text-array column of any table of
any service (found through information_schema), nor any outbox payload, holds the
address. Erasure twice changes nothing more; an erasure before the data leaves the
later data pseudonymised; an unknown address is a no-op.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pearls_awards.service_layer.rebuild import rebuild_view
from pearls_shared.db import connect
from pearls_shared.privacy import Eraser, ErasureSettings
from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import APPLICATIONS
from tests.privacy.stack import (
    AUTH,
    SERVICES,
    Stack,
    close_and_decide,
    contact,
    open_call,
    register_mentor,
    running_stack,
    submit,
)

pytestmark = pytest.mark.integration

CONSUMERS = ("mentoring", "awards", "notifications")
ERASER = Eraser.from_settings(ErasureSettings())  # the key the in-process services use


async def _erase(stack: Stack, **body: str) -> dict[str, Any]:
    response = await stack.clients["applications"].post("/erasures", headers=AUTH, json=body)
    assert response.status_code == 202, response.text
    erasure: dict[str, Any] = response.json()
    return erasure


async def _event_id_of(stack: Stack, erasure_id: str) -> str:
    [row] = await stack.fetch(
        "applications", "SELECT event_id FROM outbox WHERE message_key = $1", erasure_id.encode()
    )
    return str(row["event_id"])


async def _handled_everywhere(stack: Stack, event_id: str) -> None:
    async def handled() -> bool:
        return all([await stack.handled(s, event_id) for s in CONSUMERS])

    await wait_for(handled, within=60, what=f"event {event_id} handled by every consumer")


async def _mentions(stack: Stack, text: str) -> dict[str, list[tuple[str, str, str]]]:
    found = {s: await stack.rows_mentioning(s, text) for s in SERVICES}
    return {s: rows for s, rows in found.items() if rows}


async def _through_the_flow(stack: Stack, tag: str, person: str, backup: str) -> str:
    """Submitted, accepted, matched with a mentor, mailed, in the awards' view."""
    await register_mentor(stack, f"mentor.{tag}@mentors.example")
    call_id = await open_call(stack)
    app_id, _ = await submit(
        stack,
        call_id,
        f"Seyðisfjörður {tag}",
        [contact("Sigrún Person", person), contact("Backup Person", backup, "backup")],
    )
    await close_and_decide(stack, call_id, {app_id: "accept"})
    pid = uuid.UUID(app_id)

    async def everywhere() -> bool:
        matched = await stack.fetch(
            "mentoring",
            "SELECT 1 FROM assignments WHERE participant_id = $1 AND ended_at IS NULL",
            pid,
        )
        view = await stack.fetch(
            "awards",
            "SELECT 1 FROM participants WHERE participant_id = $1 AND mentors <> '{}'::jsonb",
            pid,
        )
        mails = await stack.fetch(
            "notifications",
            "SELECT template FROM deliveries WHERE recipient = $1 AND status = 'sent'",
            person,
        )
        directory = await stack.fetch(
            "notifications", "SELECT 1 FROM participant_contacts WHERE email = $1", person
        )
        sent = {r["template"] for r in mails}
        return bool(
            matched
            and view
            and directory
            and {"application_received", "application_accepted", "mentor_assigned"} <= sent
        )

    await wait_for(everywhere, within=90, what="the person in every service")
    # The starting point: every service holds the address.
    assert set(await _mentions(stack, person)) == set(SERVICES)
    return app_id


async def test_an_erased_person_is_nowhere_and_a_second_erasure_changes_nothing(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> None:
    tag = uuid.uuid4().hex[:8]
    person = f"sigrun.{tag}@fjord.example"
    backup = f"backup.{tag}@fjord.example"
    async with running_stack(postgres_server, kafka_settings) as stack:
        app_id = await _through_the_flow(stack, tag, person, backup)

        erasure = await _erase(stack, email=person)
        assert erasure["scope"] == "person" and erasure["applications"] == 1
        event_id = await _event_id_of(stack, erasure["erasure_id"])
        await _handled_everywhere(stack, event_id)

        assert await _mentions(stack, person) == {}
        # The person's name went with the address; the backup contact is untouched.
        assert await _mentions(stack, "Sigrún Person") == {}
        assert set(await _mentions(stack, backup)) == set(SERVICES)
        pseudonym = ERASER.pseudonym(person)
        for service in SERVICES:
            assert await stack.rows_mentioning(service, pseudonym), service
        # The log keeps who (the pseudonym), what, when, outcome.
        log = await stack.fetch(
            "notifications",
            "SELECT template, status, recipient_name FROM deliveries WHERE recipient = $1",
            pseudonym,
        )
        assert {r["template"] for r in log} >= {"application_accepted", "mentor_assigned"}
        assert {r["recipient_name"] for r in log} == {"(erased)"}
        # What the event carried: a keyed hash, never the address.
        records = await read_topic(kafka_settings.bootstrap_servers, APPLICATIONS)
        [record] = [r for r in records if r.key == erasure["erasure_id"].encode()]
        assert person.encode() not in record.value
        assert ERASER.hash(person).encode() in record.value

        # A rebuild of the awards' view from the topics (which still hold the original
        # events) brings nothing back: the register pseudonymises on arrival.
        conn = await connect(stack.dsns["awards"])
        try:
            assert await rebuild_view(conn, kafka_settings) > 0
        finally:
            await conn.close()
        assert await _mentions(stack, person) == {}
        assert await stack.rows_mentioning("awards", pseudonym)

        before = {s: await stack.fingerprint(s, tag) for s in SERVICES}
        before |= {f"{s} (app)": await stack.fingerprint(s, app_id) for s in SERVICES}
        # The same event delivered again (a redelivery) ...
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                APPLICATIONS, record.value, key=record.key, headers=list(record.headers)
            )
        finally:
            await producer.stop()
        # ... and a second erasure of the same address, which is a new event.
        again = await _erase(stack, email=person)
        assert again["applications"] == 0
        await _handled_everywhere(stack, await _event_id_of(stack, again["erasure_id"]))
        after = {s: await stack.fingerprint(s, tag) for s in SERVICES}
        after |= {f"{s} (app)": await stack.fingerprint(s, app_id) for s in SERVICES}
        assert after == before
        assert await _mentions(stack, person) == {}
        # One effect, recorded once: the second erasure found nothing left to do.
        for service in ("mentoring", "awards"):
            for done, times in ((erasure, 1), (again, 0)):
                audit = await stack.fetch(
                    service,
                    "SELECT 1 FROM audit WHERE action = 'person_erased'"
                    " AND details->>'erasure_id' = $1",
                    done["erasure_id"],
                )
                assert len(audit) == times, (service, done)


async def test_an_erasure_before_the_data_leaves_the_later_data_pseudonymised(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> None:
    tag = uuid.uuid4().hex[:8]
    person = f"early.{tag}@fjord.example"
    unknown = f"nobody.{tag}@nowhere.example"
    async with running_stack(postgres_server, kafka_settings) as stack:
        # An address no service has seen: a no-op everywhere (only the register learns it).
        nobody = await _erase(stack, email=unknown)
        assert nobody["applications"] == 0
        await _handled_everywhere(stack, await _event_id_of(stack, nobody["erasure_id"]))
        for service in SERVICES:
            assert await stack.fingerprint(service, tag) == [], service
            assert not await stack.rows_mentioning(service, ERASER.pseudonym(unknown)), service

        # The person is erased before any service knows them ...
        early = await _erase(stack, email=person)
        await _handled_everywhere(stack, await _event_id_of(stack, early["erasure_id"]))
        # ... then a city names them as its contact and is accepted.
        call_id = await open_call(stack)
        app_id, _ = await submit(
            stack, call_id, f"Vopnafjörður {tag}", [contact("Early Person", person)]
        )
        await close_and_decide(stack, call_id, {app_id: "accept"})
        pid = uuid.UUID(app_id)
        pseudonym = ERASER.pseudonym(person)

        async def arrived() -> bool:
            m = await stack.fetch(
                "mentoring", "SELECT contacts FROM participants WHERE participant_id = $1", pid
            )
            a = await stack.fetch(
                "awards", "SELECT contacts FROM participants WHERE participant_id = $1", pid
            )
            n = await stack.fetch(
                "notifications",
                "SELECT 1 FROM participant_contacts WHERE participant_id = $1",
                pid,
            )
            return bool(m and m[0]["contacts"] and a and a[0]["contacts"] and n)

        await wait_for(arrived, within=60, what="the acceptance in every consumer")
        # The applications service holds what the city gave it anew; every copy the
        # other services took from the events is pseudonymised on arrival.
        assert set(await _mentions(stack, person)) == {"applications"}
        for service in CONSUMERS:
            assert await stack.rows_mentioning(service, pseudonym), service
        # Nobody writes to a pseudonym.
        mails = await stack.fetch(
            "notifications",
            "SELECT 1 FROM deliveries WHERE recipient = ANY($1::text[])",
            [person, pseudonym],
        )
        assert mails == []
        assert stack.sink.to(person) == [] and stack.sink.to(pseudonym) == []


async def test_a_closed_applications_contacts_are_erased_by_its_id_and_an_open_one_is_refused(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> None:
    tag = uuid.uuid4().hex[:8]
    rejected_contact = f"rejected.{tag}@fjord.example"
    accepted_contact = f"accepted.{tag}@fjord.example"
    async with running_stack(postgres_server, kafka_settings) as stack:
        call_id = await open_call(stack)
        rejected, _ = await submit(
            stack, call_id, f"Bakkafjörður {tag}", [contact("Rejected Person", rejected_contact)]
        )
        accepted, _ = await submit(
            stack, call_id, f"Raufarhöfn {tag}", [contact("Accepted Person", accepted_contact)]
        )
        await close_and_decide(stack, call_id, {rejected: "reject", accepted: "accept"})

        refused = await stack.clients["applications"].post(
            "/erasures", headers=AUTH, json={"application_id": accepted}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"][0]["type"] == "status"
        unknown = await stack.clients["applications"].post(
            "/erasures", headers=AUTH, json={"application_id": str(uuid.uuid4())}
        )
        assert unknown.status_code == 404
        nobody = await stack.clients["applications"].post(
            "/erasures", json={"email": rejected_contact}
        )
        assert nobody.status_code == 401
        both = await stack.clients["applications"].post(
            "/erasures", headers=AUTH, json={"email": rejected_contact, "application_id": rejected}
        )
        assert both.status_code == 422, both.text

        async def rejection_mailed() -> bool:
            return bool(stack.sink.to(rejected_contact))

        await wait_for(rejection_mailed, within=60, what="the rejection mail")
        erasure = await _erase(stack, application_id=rejected)
        assert erasure["scope"] == "application"
        await _handled_everywhere(stack, await _event_id_of(stack, erasure["erasure_id"]))
        assert await _mentions(stack, rejected_contact) == {}
        assert "applications" in await _mentions(stack, accepted_contact)
