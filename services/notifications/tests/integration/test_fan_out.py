"""Every mapped event type, published on its real topic, becomes exactly the expected
e-mails at a real SMTP server: one per recipient, in the recipient's language, as
valid MIME; each success is announced on pearls.notifications.v1."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from pearls_notifications.adapters.templates import Templates
from pearls_notifications.domain.identity import message_id
from pearls_notifications.domain.model import Recipient
from pearls_notifications.domain.routing import WHO_HEARS_WHAT, Known, mails_for
from pearls_shared.events.samples import sample
from pearls_shared.testing import read_topic, wait_for
from pearls_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration]

TEMPLATES = Templates()


def german_primary(event: Any) -> Any:
    """The primary contact prefers German, so both languages are exercised."""
    contacts = getattr(event, "contacts", None)
    if not contacts:
        return event
    changed = tuple(
        c.model_copy(update={"language": "de"}) if c.role == "primary" else c for c in contacts
    )
    return event.model_copy(update={"contacts": changed})


async def test_each_mapped_event_type_gives_exactly_the_expected_emails(
    start_service: Any,
    publisher: Any,
    smtp_sink: Any,
    tag: str,
    personalize: Any,
    kafka_bootstrap_servers: str,
) -> None:
    service = await start_service(coordinator_email=f"coordinators+{tag}@pearls.example")
    published = []
    for event_type in sorted(WHO_HEARS_WHAT):
        event = german_primary(personalize(sample(event_type)))
        published.append((event, await publisher.publish(event)))

    expected: dict[tuple[str, str], tuple[str, str]] = {}  # (rcpt, message-id) -> (tmpl, lang)
    for event, envelope in published:
        known = Known(coordinators=Recipient.of(str(service.settings.coordinator_email), "C", "en"))
        for mail in mails_for(event, known):
            lang = mail.recipient.language if mail.recipient.language in ("en", "de") else "en"
            subject = TEMPLATES.render(
                mail.template,
                lang,
                {
                    "event": mail.context,
                    "recipient": {"name": mail.recipient.name, "email": mail.recipient.email},
                    "unsubscribe_url": None,
                },
            ).subject
            mid = message_id(
                envelope.id,
                mail.recipient.email,
                mail.template,
                service.settings.message_id_host(),
            )
            expected[(mail.recipient.email, mid)] = (subject, lang)
    assert len(expected) > 40

    async def all_arrived() -> bool:
        return set(smtp_sink.counts(tag)) >= set(expected)

    await wait_for(all_arrived, within=120, what="every expected e-mail at the SMTP server")
    # The coordinators' mailbox also hears about other engineers' calls on the shared
    # broker; everyone else's address is this test's own.
    coordinators = str(service.settings.coordinator_email)
    counts = smtp_sink.counts(tag)
    ours = {k: n for k, n in counts.items() if k in expected or k[0] != coordinators}
    assert set(ours) == set(expected), "no unexpected e-mail"
    assert all(n == 1 for n in ours.values()), "no e-mail twice"

    for received in smtp_sink.tagged(tag):
        if (received.rcpt, received.message_id) not in expected:
            continue
        msg = received.message()
        subject, language = expected[(received.rcpt, received.message_id)]
        assert msg.defects == []
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert msg["To"].addresses[0].addr_spec == received.rcpt
        assert msg["From"].addresses[0].addr_spec == str(service.settings.from_address)
        assert msg["Content-Language"] == language
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        greeting = "Guten Tag" if language == "de" else "Dear"
        assert text.startswith(greeting) and greeting in html
        assert msg["Subject"] == subject

    # Every e-mail is announced once on the notifications topic, keyed by recipient.
    async def announced() -> Counter[str]:
        records = await read_topic(kafka_bootstrap_servers, NOTIFICATIONS)
        seen: Counter[str] = Counter()
        for r in records:
            data = json.loads(r.value)
            if (data.get("recipient", ""), data.get("message_id")) in expected:
                seen[data["message_id"]] += 1
                assert r.key == data["recipient"].encode()
        return seen if len(seen) == len(expected) else Counter()

    seen = await wait_for(announced, within=60, what="pearls.notification.sent for every e-mail")
    assert set(seen) == {mid for _, mid in expected}
    assert set(seen.values()) == {1}
