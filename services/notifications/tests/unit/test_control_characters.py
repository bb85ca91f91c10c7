"""A value's control characters never reach the reader of a mail (issue 12).

A line break in a contact's name would start a line of the sender's choosing
(``Bcc: …``) in the plain-text body; an escape sequence would drive a terminal
that shows the mail. The templates print every value with its control
characters as spaces and keep their own line breaks.
"""

from __future__ import annotations

from typing import Any

import pytest

from pearls_notifications.adapters.templates import Templates
from pearls_notifications.domain.model import Recipient
from pearls_notifications.domain.routing import WHO_HEARS_WHAT, Known, mails_for
from pearls_shared.events.registry import parse
from pearls_shared.events.samples import sample

TEMPLATES = Templates()
KNOWN = Known(coordinators=Recipient.of("c@pearls.example", "Coordinators", "en"))
HOSTILE = "\r\nBcc: evil@example.org\n\x1b[31mred\x1b[0m\u2028\x85Cc: x@example.org"
INJECTED = ("Bcc:", "Cc:")


def _lines_starting_with_injection(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith(INJECTED)]


def _assert_clean(text: str) -> None:
    assert not _lines_starting_with_injection(text), text
    assert "\x1b" not in text and "\r" not in text and "\x85" not in text, text
    assert "\u2028" not in text, text


def _poison(value: Any) -> Any:
    if isinstance(value, str):
        return value + HOSTILE
    if isinstance(value, dict):
        return {k: _poison(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_poison(v) for v in value]
    return value


def test_a_contact_name_with_a_line_break_does_not_start_a_line_in_the_text_body() -> None:
    event = sample("pearls.application.submitted")
    data = event.model_dump(mode="json")
    data["contacts"][0]["name"] = "Inese\r\nBcc: evil@example.org"
    parsed = parse("pearls.application.submitted", data)
    mails = mails_for(parsed, KNOWN)
    assert any(mail.recipient.name.startswith("Inese") for mail in mails)
    for mail in mails:
        context = {
            "event": mail.context,
            "recipient": {"name": mail.recipient.name, "email": mail.recipient.email},
            "unsubscribe_url": None,
        }
        for language in TEMPLATES.languages:
            rendered = TEMPLATES.render(mail.template, language, context)
            _assert_clean(rendered.text)
            _assert_clean(rendered.subject)
            if mail.recipient.name.startswith("Inese"):  # the value, on one line
                assert "Inese Bcc: evil@example.org" in rendered.text
            assert rendered.text.count("\n") > 3  # the template's own lines stay


@pytest.mark.parametrize("event_type", sorted(WHO_HEARS_WHAT))
def test_no_value_of_any_event_brings_its_control_characters_into_a_mail(event_type: str) -> None:
    for mail in mails_for(sample(event_type), KNOWN):
        context = {
            "event": _poison(mail.context),
            "recipient": {"name": _poison(mail.recipient.name), "email": mail.recipient.email},
            "unsubscribe_url": _poison("https://pearls.example/unsubscribe?x=1"),
        }
        for language in TEMPLATES.languages:
            rendered = TEMPLATES.render(mail.template, language, context)
            for part in (rendered.subject, rendered.text, rendered.html):
                _assert_clean(part)


def test_a_digest_keeps_the_line_breaks_of_the_mails_it_gathers() -> None:
    [mail, *_] = mails_for(sample("pearls.plan.milestone_reached"), KNOWN)
    context = {
        "event": mail.context,
        "recipient": {"name": "Inese", "email": "inese@example.org"},
        "unsubscribe_url": None,
    }
    item = TEMPLATES.render(mail.template, "en", context, bare=True)
    digest = TEMPLATES.render(
        "daily_digest",
        "en",
        {
            "event": {
                "items": [{"subject": item.subject, "text": item.text.strip(), "html": item.html}],
                "day": "2026-12-02",
            },
            "recipient": {"name": "Inese", "email": "inese@example.org"},
            "unsubscribe_url": None,
        },
    )
    assert item.text.strip() in digest.text
