"""A contacts change crosses the bus: after the applicant's PATCH, mentoring, awards and
notifications hold the new contacts, and the next e-mail (the mentor assignment) goes to
the new contact person, not the old one. An older list arriving late changes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pearls_shared.events.applications import ApplicationContactsChanged
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import wait_for
from pearls_shared.topics import APPLICATIONS
from tests.privacy.stack import (
    close_and_decide,
    contact,
    open_call,
    register_mentor,
    running_stack,
    submit,
)

pytestmark = pytest.mark.integration


def _emails(contacts: Any) -> list[str]:
    loaded = json.loads(contacts) if isinstance(contacts, str) else contacts
    return sorted(c["email"] for c in loaded)


async def test_after_a_contacts_change_the_next_mail_goes_to_the_new_contact(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> None:
    tag = uuid.uuid4().hex[:8]
    old = f"old.primary.{tag}@fjord.example"
    new = f"new.primary.{tag}@fjord.example"
    backup = f"backup.{tag}@fjord.example"
    async with running_stack(postgres_server, kafka_settings) as stack:
        call_id = await open_call(stack)
        app_id, token = await submit(
            stack,
            call_id,
            f"Djúpivogur {tag}",
            [contact("Old Primary", old), contact("Backup", backup, "backup")],
        )
        await close_and_decide(stack, call_id, {app_id: "accept"})
        pid = uuid.UUID(app_id)

        async def accepted_everywhere() -> bool:
            m = await stack.fetch(
                "mentoring", "SELECT 1 FROM participants WHERE participant_id = $1", pid
            )
            a = await stack.fetch(
                "awards",
                "SELECT 1 FROM participants WHERE participant_id = $1 AND accepted_at IS NOT NULL",
                pid,
            )
            n = await stack.fetch(
                "notifications",
                "SELECT 1 FROM deliveries WHERE recipient = $1"
                " AND template = 'application_accepted' AND status = 'sent'",
                old,
            )
            return bool(m and a and n)

        await wait_for(accepted_everywhere, within=60, what="the acceptance in every service")

        # The participant's staff changed: a new primary, the backup stays.
        changed = await stack.clients["applications"].patch(
            f"/applications/{app_id}",
            headers={"Authorization": f"Bearer {token}"},
            json={"contacts": [contact("New Primary", new), contact("Backup", backup, "backup")]},
        )
        assert changed.status_code == 200, changed.text
        # The same list again is no change: nothing more is published.
        same = await stack.clients["applications"].patch(
            f"/applications/{app_id}",
            headers={"Authorization": f"Bearer {token}"},
            json={"contacts": [contact("New Primary", new), contact("Backup", backup, "backup")]},
        )
        assert same.status_code == 200, same.text
        published = await stack.fetch(
            "applications",
            "SELECT event_id FROM outbox WHERE message_key = $1 AND headers::text LIKE"
            " '%pearls.application.contacts_changed%'",
            app_id.encode(),
        )
        assert len(published) == 1

        async def new_contacts_everywhere() -> bool:
            [m] = await stack.fetch(
                "mentoring", "SELECT contacts FROM participants WHERE participant_id = $1", pid
            )
            [a] = await stack.fetch(
                "awards", "SELECT contacts FROM participants WHERE participant_id = $1", pid
            )
            n = await stack.fetch(
                "notifications",
                "SELECT email FROM participant_contacts WHERE participant_id = $1",
                pid,
            )
            return (
                _emails(m["contacts"]) == sorted([new, backup])
                and _emails(a["contacts"]) == sorted([new, backup])
                and sorted(r["email"] for r in n) == sorted([new, backup])
            )

        await wait_for(new_contacts_everywhere, within=60, what="the new contacts everywhere")

        # Only now a mentor comes: the assignment is the next e-mail to the participant.
        await register_mentor(stack, f"mentor.{tag}@mentors.example")

        async def assignment_mailed() -> bool:
            rows = await stack.fetch(
                "notifications",
                "SELECT 1 FROM deliveries WHERE recipient = $1 AND template = 'mentor_assigned'"
                " AND status = 'sent'",
                new,
            )
            return bool(rows) and bool(stack.sink.to(new))

        await wait_for(assignment_mailed, within=60, what="the assignment mail to the new contact")
        to_old = await stack.fetch(
            "notifications", "SELECT template FROM deliveries WHERE recipient = $1", old
        )
        # Both may come from one consumer batch (one transaction: the same created_at),
        # so no order is asserted: nothing after the change went to the old contact.
        assert sorted(r["template"] for r in to_old) == [
            "application_accepted",
            "application_received",
        ]
        assert len(stack.sink.to(old)) == 2
        assert len(stack.sink.to(new)) == 1

        # An older list (as of the submission) delivered late must not win anywhere.
        stale = ApplicationContactsChanged(
            application_id=pid,
            call_id=uuid.UUID(call_id),
            changed_at=(
                await stack.fetch(
                    "applications",
                    "SELECT submitted_at FROM applications WHERE application_id = $1",
                    pid,
                )
            )[0]["submitted_at"],
            city_name=f"Djúpivogur {tag}",
            contacts=({"name": "Old Primary", "email": old, "language": "en", "role": "primary"},),
        )
        envelope = envelope_for(
            stale,
            correlation_id="stale-contacts",
            time=stale.changed_at,
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                APPLICATIONS,
                envelope.value(),
                key=stale.key().encode(),
                headers=envelope.headers(),
            )
        finally:
            await producer.stop()

        async def stale_handled() -> bool:
            services = ("mentoring", "awards", "notifications")
            return all([await stack.handled(s, envelope.id) for s in services])

        await wait_for(stale_handled, within=60, what="the stale change handled everywhere")
        assert await new_contacts_everywhere()
