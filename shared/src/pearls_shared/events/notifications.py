"""Events of the notifications service: what was e-mailed to whom, or why not.

Topic ``pearls.notifications.v1``, keyed by the recipient's e-mail address so
that everything sent to one person stays in order. ``message_id`` is the
deterministic Message-ID derived from (causing event id, recipient, template):
the same e-mail always has the same id, which is how "never twice" is audited.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from pearls_shared import topics
from pearls_shared.events.base import EventData
from pearls_shared.events.common import EmailStr, LanguageCode, Slug, Text

EventTypeName = Annotated[str, StringConstraints(pattern=r"^pearls\.[a-z_]+\.[a-z_]+$")]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MessageId = Annotated[str, StringConstraints(pattern=r"^<[^<>\s]+@[^<>\s]+>$", max_length=998)]


class _NotificationEvent(EventData):
    topic: ClassVar[str] = topics.NOTIFICATIONS
    producer: ClassVar[str] = "notifications"
    key_field: ClassVar[str] = "recipient"

    recipient: EmailStr = Field(description="E-mail address written to; the Kafka key.")
    notification_id: uuid.UUID = Field(description="Id of the notification record.")
    template: Slug = Field(description="Template used, e.g. 'application_accepted'.")
    language: LanguageCode = Field(description="Language the e-mail was (to be) written in.")
    cause_event_id: EventId = Field(description="CloudEvents id of the event that caused it.")
    cause_event_type: EventTypeName = Field(description="CloudEvents type of that event.")
    message_id: MessageId = Field(
        description="Deterministic RFC 5322 Message-ID, '<…@…>', from (event id, recipient, "
        "template)."
    )
    attempts: int = Field(ge=1, description="Delivery attempts made, including the last one.")


class NotificationSent(_NotificationEvent):
    """An e-mail was accepted by the mail server (SMTP 250) for a recipient."""

    event_type: ClassVar[str] = "pearls.notification.sent"

    sent_at: AwareDatetime = Field(description="When the mail server accepted the message.")
    digest: bool = Field(
        default=False, description="True when the e-mail bundled several non-essential updates."
    )


class NotificationFailed(_NotificationEvent):
    """An e-mail could not be delivered; a permanent failure is not retried."""

    event_type: ClassVar[str] = "pearls.notification.failed"

    failed_at: AwareDatetime = Field(description="When the last attempt failed.")
    permanent: bool = Field(
        description="True when retrying cannot help (e.g. 5xx reply, invalid address)."
    )
    reason: Text = Field(description="What went wrong, e.g. the server's reply text.")
    smtp_code: int | None = Field(
        default=None, ge=200, le=599, description="SMTP reply code, if the server answered."
    )


EVENTS: tuple[type[EventData], ...] = (NotificationSent, NotificationFailed)
