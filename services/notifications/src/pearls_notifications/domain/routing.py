"""Who hears what: the one table that maps each event type to recipients and template.

Each rule names an audience (a pure function of the event and what the
directory knows), a template and a category. One event fans out to one e-mail
per recipient and template; an address that appears twice is written to once.
Event types absent from ``WHO_HEARS_WHAT`` send no e-mail (see ``SILENT``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pearls_notifications.domain.model import Category, Mail, Recipient
from pearls_shared.events.base import EventData
from pearls_shared.privacy import is_pseudonym


@dataclass(frozen=True, slots=True)
class Known:
    """What the contact directory adds to an event (loaded by the handler)."""

    coordinators: Recipient
    assigned_mentor: Recipient | None = None


Audience = Callable[[Any, Known], Iterable[Recipient]]


def contacts(data: Any, known: Known) -> Iterable[Recipient]:
    """The applicant's / participant's contact persons: primary and backups."""
    for c in data.contacts:
        yield Recipient.of(c.email, c.name, c.language)


def contacts_still_taking_part(data: Any, known: Known) -> Iterable[Recipient]:
    """The participant's contacts, unless it left itself (its withdrawal mail says so)."""
    if getattr(data, "reason_code", None) != "participant_withdrawn":
        yield from contacts(data, known)


def mentor(data: Any, known: Known) -> Iterable[Recipient]:
    """The mentor named in the event, else the one the directory knows as assigned."""
    ref = getattr(data, "mentor", None)
    if ref is not None:
        yield Recipient.of(ref.email, ref.name, ref.language)
    elif known.assigned_mentor is not None:
        yield known.assigned_mentor


def registered_mentor(data: Any, known: Known) -> Iterable[Recipient]:
    yield Recipient.of(data.email, data.name, data.language)


def coordinators(data: Any, known: Known) -> Iterable[Recipient]:
    yield known.coordinators


def jurors(data: Any, known: Known) -> Iterable[Recipient]:
    for j in data.jurors:
        yield Recipient.of(j.email, j.name, j.language)


def session_participants(data: Any, known: Known) -> Iterable[Recipient]:
    for p in data.participants:
        for c in p.contacts:
            yield Recipient.of(c.email, c.name, c.language)


def session_hosts(data: Any, known: Known) -> Iterable[Recipient]:
    for h in data.hosts:
        yield Recipient.of(h.email, h.name, h.language)


@dataclass(frozen=True, slots=True)
class Rule:
    audience: Audience
    template: str
    category: Category


E, P, S = Category.ESSENTIAL, Category.PROGRESS, Category.SESSIONS

# fmt: off
WHO_HEARS_WHAT: dict[str, tuple[Rule, ...]] = {
    # pearls.applications.v1
    "pearls.call.closed":             (Rule(coordinators, "call_closed", E),),
    "pearls.application.submitted":   (Rule(contacts, "application_received", E),),
    "pearls.application.withdrawn":   (Rule(contacts, "application_withdrawn", E),),
    "pearls.application.accepted":    (Rule(contacts, "application_accepted", E),),
    "pearls.application.rejected":    (Rule(contacts, "application_rejected", E),),
    "pearls.application.waitlisted":  (Rule(contacts, "application_waitlisted", E),),
    # pearls.mentoring.v1
    "pearls.mentor.registered":       (Rule(registered_mentor, "mentor_registered", E),),
    "pearls.mentor.assigned":         (Rule(contacts, "mentor_assigned", E),
                                       Rule(mentor, "mentee_assigned", E)),
    "pearls.mentor.unassigned":       (Rule(contacts_still_taking_part, "mentor_unassigned", E),
                                       Rule(mentor, "mentee_unassigned", E)),
    "pearls.mentor.unmatched":        (Rule(coordinators, "mentor_unmatched", E),),
    "pearls.session.scheduled":       (Rule(session_participants, "session_scheduled", S),
                                       Rule(session_hosts, "session_scheduled", S)),
    "pearls.plan.submitted":          (Rule(mentor, "plan_submitted", E),),
    "pearls.plan.approved":           (Rule(contacts, "plan_approved", E),),
    "pearls.plan.changes_requested":  (Rule(contacts, "plan_changes_requested", E),),
    "pearls.plan.milestone_reached":  (Rule(mentor, "milestone_reached", P),),
    "pearls.plan.milestone_overdue":  (Rule(contacts, "milestone_overdue", E),
                                       Rule(mentor, "milestone_overdue", E)),
    "pearls.plan.completed":          (Rule(contacts, "plan_completed", P),
                                       Rule(mentor, "plan_completed", P)),
    # pearls.awards.v1
    "pearls.award.round_opened":      (Rule(jurors, "award_jury_invited", E),),
    "pearls.award.nominated":         (Rule(contacts, "award_nominated", E),),
    "pearls.award.granted":           (Rule(contacts, "award_granted", E),),
    "pearls.award.revoked":           (Rule(contacts, "award_revoked", E),),
    "pearls.award.round_closed":      (Rule(jurors, "award_round_closed", E),
                                       Rule(coordinators, "award_round_closed", E)),
}
# fmt: on

# Contract events that concern no one personally, and why.
SILENT: dict[str, str] = {
    "pearls.call.opened": "announced on the programme's public channels, not by personal mail",
    "pearls.application.reviewed": "a running score; the decision is what the applicant hears",
    "pearls.application.contacts_changed": "the applicant changed them itself; the directory"
    " takes the new list and every later e-mail goes to it",
    "pearls.person.erased": "an erasure: the person's records are pseudonymised, nobody is"
    " written to",
    "pearls.notification.sent": "our own output",
    "pearls.notification.failed": "our own output",
}

DIGEST_TEMPLATE = "daily_digest"


def templates() -> tuple[str, ...]:
    """Every template the table (and the digest) can use, in a stable order."""
    names = {rule.template for rules in WHO_HEARS_WHAT.values() for rule in rules}
    return (*sorted(names), DIGEST_TEMPLATE)


def mails_for(event: EventData, known: Known) -> list[Mail]:
    """The e-mails one event causes: one per (recipient, template), first rule wins.
    An erased person's pseudonym is never written to."""
    mails: list[Mail] = []
    seen: set[tuple[str, str]] = set()
    context = event.to_data()
    for rule in WHO_HEARS_WHAT.get(event.event_type, ()):
        for recipient in rule.audience(event, known):
            if is_pseudonym(recipient.email):
                continue
            key = (recipient.email, rule.template)
            if key in seen:
                continue
            seen.add(key)
            mails.append(Mail(recipient, rule.template, rule.category, context))
    return mails
