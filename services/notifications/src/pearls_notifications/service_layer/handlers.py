"""Use cases: plan e-mails from events, keep the directory, send, resend, preferences.

Planning runs inside the consumer's inbox transaction and only writes rows:
the directory update and one ``deliveries`` row per (event, recipient,
template). Sending is a separate loop (``sender.py``) that never runs inside a
consumer transaction, so a slow or absent mail server never holds up Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
import structlog

from pearls_notifications.adapters import repository as repo
from pearls_notifications.config import Settings
from pearls_notifications.domain.model import Category, Mode, Recipient
from pearls_notifications.domain.routing import WHO_HEARS_WHAT, Known, mails_for
from pearls_shared import privacy
from pearls_shared.envelope import Envelope
from pearls_shared.events.applications import PersonErased
from pearls_shared.events.base import EventData

log = structlog.get_logger(__name__)

Conn: TypeAlias = "asyncpg.Connection[Any]"
WAKE_CHANNEL = "pearls_notifications_due"

# Events after which no further mail to the applicant's contacts is owed:
# their contacts are erased from the directory (the event itself still carries
# them, so its own e-mail goes out).
ERASING_EVENTS = frozenset({"pearls.application.withdrawn", "pearls.application.rejected"})


@dataclass(frozen=True, slots=True)
class Planner:
    """Turns one consumed event into directory changes and planned deliveries."""

    settings: Settings
    eraser: privacy.Eraser

    def coordinators(self) -> Recipient:
        s = self.settings
        return Recipient.of(s.coordinator_email, s.coordinator_name, s.coordinator_language)

    async def __call__(self, conn: Conn, envelope: Envelope, data: EventData) -> None:
        # Erased addresses arrive pseudonymised (an old event delivered late, a replay).
        data = await privacy.hide_erased(conn, self.eraser, data)
        await update_directory(conn, envelope, data)
        cutoff = self.settings.not_before
        if cutoff is not None and envelope.time < cutoff:
            log.info("event_before_cutoff_no_mail", cutoff=cutoff.isoformat())
            return
        participant = getattr(data, "participant_id", None)
        known = Known(
            coordinators=self.coordinators(),
            assigned_mentor=await repo.assigned_mentor(conn, participant) if participant else None,
        )
        planned = 0
        for mail in mails_for(data, known):
            mode = await repo.preference(conn, mail.recipient.email, mail.category)
            status = {Mode.IMMEDIATE: "pending", Mode.DIGEST: "digest", Mode.OFF: "suppressed"}[
                mode
            ]
            planned += await repo.plan_delivery(
                conn,
                mail,
                event_id=envelope.id,
                event_type=envelope.type,
                correlation_id=envelope.correlation_id,
                status=status,
                message_id_domain=self.settings.message_id_host(),
            )
        if planned:
            # Delivered on commit: wakes the sender without waiting for its poll.
            await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        log.info("deliveries_planned", planned=planned)


async def update_directory(conn: Conn, envelope: Envelope, data: Any) -> None:
    """Keep the contact directory current from the events that carry people.

    Every write is conditional on the event's time, because events about one
    person travel on different partitions and arrive in any order.
    """
    event_type, as_of = envelope.type, envelope.time
    participant = getattr(data, "participant_id", None) or getattr(data, "application_id", None)
    if event_type == "pearls.mentor.registered":
        who = Recipient.of(data.email, data.name, data.language)
        await repo.upsert_mentor(conn, data.mentor_id, who, as_of)
        return
    mentor_ref = getattr(data, "mentor", None)
    if mentor_ref is not None:
        who = Recipient.of(mentor_ref.email, mentor_ref.name, mentor_ref.language)
        await repo.upsert_mentor(conn, mentor_ref.mentor_id, who, as_of)
    if event_type == "pearls.mentor.assigned":
        await repo.assign_mentor(conn, data.participant_id, data.mentor.mentor_id, as_of)
    elif event_type == "pearls.mentor.unassigned":
        await repo.unassign_mentor(conn, data.participant_id, data.mentor.mentor_id, as_of)
    if participant is None or not hasattr(data, "contacts"):
        return
    if event_type in ERASING_EVENTS:
        await repo.erase_participant(conn, participant, as_of)
        return
    # The contract compares addresses case-sensitively, the directory does not:
    # "Anna@x.org" and "anna@x.org" are one person, one row (the primary's, if either).
    unique: dict[str, tuple[Recipient, str]] = {}
    for c in data.contacts:
        who = Recipient.of(c.email, c.name, c.language)
        if who.email not in unique or c.role == "primary":
            unique[who.email] = (who, c.role)
    await repo.replace_contacts(
        conn,
        participant,
        data.city_name,
        [who for who, _ in unique.values()],
        [role for _, role in unique.values()],
        as_of,
    )


async def directory_only(conn: Conn, envelope: Envelope, data: EventData) -> None:
    """Events that send nothing but change who the directory knows."""
    await update_directory(conn, envelope, data)


@dataclass(frozen=True, slots=True)
class Erasures:
    """``pearls.person.erased``: pseudonymise every record of the erased addresses."""

    eraser: privacy.Eraser

    async def __call__(self, conn: Conn, envelope: Envelope, data: Any) -> None:
        erased: PersonErased = data
        # Directory, deliveries (address, rendering data), preferences, outbox: swept.
        hide = await privacy.apply_erasure(conn, self.eraser, erased)
        if erased.scope == "application" and erased.application_id is not None:
            await repo.erase_participant(conn, erased.application_id, envelope.time)
        if hide:
            held = await repo.forget_erased(conn, sorted(hide.values()))
            log.info("erasure_applied_to_deliveries", unsent_cancelled=held)


def directory_handlers() -> dict[str, Any]:
    """What a rebuild of the directory from the topics applies: every event that names
    people (no e-mail is planned) and the erasures, erased addresses pseudonymised on
    arrival, so a rebuild never brings an erased address back."""
    eraser = privacy.Eraser.from_settings()
    directory = privacy.guard(directory_only, eraser)
    return {
        **dict.fromkeys(WHO_HEARS_WHAT, directory),
        "pearls.application.contacts_changed": directory,
        "pearls.person.erased": Erasures(eraser),
    }


def consumer_handlers(settings: Settings) -> dict[str, Any]:
    """Every mailed event type, the contacts change (directory only) and erasures; the
    other silent ones carry no person the directory needs."""
    eraser = privacy.Eraser.from_settings()
    planner = Planner(settings, eraser)
    return {
        **dict.fromkeys(WHO_HEARS_WHAT, planner),
        "pearls.application.contacts_changed": privacy.guard(directory_only, eraser),
        "pearls.person.erased": Erasures(eraser),
    }


# --- coordinator actions ------------------------------------------------------


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


async def resend(conn: Conn, delivery_id: uuid.UUID) -> asyncpg.Record:
    """Put a failed e-mail back in the queue (same Message-ID: it never arrived)."""
    async with conn.transaction():
        row = await repo.requeue_failed(conn, delivery_id)
        if row is None:
            existing = await repo.get_delivery(conn, delivery_id)
            if existing is None:
                raise NotFound(f"delivery {delivery_id} does not exist")
            raise Conflict(
                f"delivery {delivery_id} is {existing['status']!r}; only 'failed' can be resent"
            )
        await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        return row


async def change_preference(conn: Conn, recipient: str, category: Category, mode: Mode) -> None:
    if category is Category.ESSENTIAL:
        raise Conflict("category: essential mail cannot be switched off or bundled")
    async with conn.transaction():
        await repo.set_preference(conn, recipient, category, mode)
        if mode is Mode.OFF:
            # Items already held for the digest must not arrive after the opt-out.
            await repo.suppress_held(conn, recipient, category)
