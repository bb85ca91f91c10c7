"""Who hears what: the table covers the contract, and each event fans out as declared."""

from __future__ import annotations

import uuid

import pytest

from pearls_notifications.domain.model import Category, Recipient
from pearls_notifications.domain.routing import SILENT, WHO_HEARS_WHAT, Known, mails_for
from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.events.samples import sample

COORD = Recipient.of("Coordinators@Pearls.example", "Coordinators", "en")
KNOWN = Known(coordinators=COORD)

INESE = "inese.berzina@kuldiga.example"
MARTINS = "martins.ozols@kuldiga.example"
KADRI = "kadri.tamm@viljandi.example"
ANNA = "anna.kowalska@jury.example"
LARS = "lars.nilsson@jury.example"
COORDS = "coordinators@pearls.example"

# The expected fan-out of every sample event: (recipient, template) pairs.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "pearls.call.closed": {(COORDS, "call_closed")},
    "pearls.application.submitted": {
        (INESE, "application_received"),
        (MARTINS, "application_received"),
    },
    "pearls.application.withdrawn": {
        (INESE, "application_withdrawn"),
        (MARTINS, "application_withdrawn"),
    },
    "pearls.application.accepted": {
        (INESE, "application_accepted"),
        (MARTINS, "application_accepted"),
    },
    "pearls.application.rejected": {
        (INESE, "application_rejected"),
        (MARTINS, "application_rejected"),
    },
    "pearls.application.waitlisted": {
        (INESE, "application_waitlisted"),
        (MARTINS, "application_waitlisted"),
    },
    "pearls.mentor.registered": {(KADRI, "mentor_registered")},
    "pearls.mentor.assigned": {
        (INESE, "mentor_assigned"),
        (MARTINS, "mentor_assigned"),
        (KADRI, "mentee_assigned"),
    },
    "pearls.mentor.unassigned": {
        (INESE, "mentor_unassigned"),
        (MARTINS, "mentor_unassigned"),
        (KADRI, "mentee_unassigned"),
    },
    "pearls.mentor.unmatched": {(COORDS, "mentor_unmatched")},
    "pearls.session.scheduled": {
        (INESE, "session_scheduled"),
        (MARTINS, "session_scheduled"),
        (KADRI, "session_scheduled"),
    },
    "pearls.plan.submitted": {(KADRI, "plan_submitted")},
    "pearls.plan.approved": {(INESE, "plan_approved"), (MARTINS, "plan_approved")},
    "pearls.plan.changes_requested": {
        (INESE, "plan_changes_requested"),
        (MARTINS, "plan_changes_requested"),
    },
    "pearls.plan.milestone_reached": {(KADRI, "milestone_reached")},
    "pearls.plan.milestone_overdue": {
        (INESE, "milestone_overdue"),
        (MARTINS, "milestone_overdue"),
        (KADRI, "milestone_overdue"),
    },
    "pearls.plan.completed": {
        (INESE, "plan_completed"),
        (MARTINS, "plan_completed"),
        (KADRI, "plan_completed"),
    },
    "pearls.award.round_opened": {(ANNA, "award_jury_invited"), (LARS, "award_jury_invited")},
    "pearls.award.nominated": {(INESE, "award_nominated"), (MARTINS, "award_nominated")},
    "pearls.award.granted": {(INESE, "award_granted"), (MARTINS, "award_granted")},
    "pearls.award.revoked": {(INESE, "award_revoked"), (MARTINS, "award_revoked")},
    "pearls.award.round_closed": {
        (ANNA, "award_round_closed"),
        (LARS, "award_round_closed"),
        (COORDS, "award_round_closed"),
    },
}


def test_every_contract_event_is_either_mailed_or_declared_silent() -> None:
    assert set(WHO_HEARS_WHAT) | set(SILENT) == set(EVENT_TYPES)
    assert not set(WHO_HEARS_WHAT) & set(SILENT)


def test_expected_table_covers_every_mailed_event() -> None:
    assert set(EXPECTED) == set(WHO_HEARS_WHAT)


@pytest.mark.parametrize("event_type", sorted(WHO_HEARS_WHAT))
def test_fan_out_one_mail_per_recipient_and_template(event_type: str) -> None:
    mails = mails_for(sample(event_type), KNOWN)
    got = [(m.recipient.email, m.template) for m in mails]
    assert len(got) == len(set(got)), "a recipient must not get the same template twice"
    assert set(got) == EXPECTED[event_type]


def test_languages_come_from_the_event() -> None:
    mails = mails_for(sample("pearls.mentor.assigned"), KNOWN)
    langs = {m.recipient.email: m.recipient.language for m in mails}
    assert langs == {INESE: "lv", MARTINS: "en", KADRI: "et"}


def test_decisions_and_deadlines_are_essential_progress_and_sessions_are_not() -> None:
    def categories(event_type: str) -> set[Category]:
        return {m.category for m in mails_for(sample(event_type), KNOWN)}

    for event_type in (
        "pearls.application.accepted",
        "pearls.application.rejected",
        "pearls.plan.milestone_overdue",
        "pearls.award.granted",
        "pearls.mentor.unmatched",
    ):
        assert categories(event_type) == {Category.ESSENTIAL}
    assert categories("pearls.plan.milestone_reached") == {Category.PROGRESS}
    assert categories("pearls.session.scheduled") == {Category.SESSIONS}


def test_mentor_missing_from_the_event_comes_from_the_directory() -> None:
    event = sample("pearls.plan.milestone_reached").model_copy(update={"mentor": None})
    assert mails_for(event, KNOWN) == []
    known = Known(COORD, assigned_mentor=Recipient.of("Mentor@X.example", "M", "de"))
    [mail] = mails_for(event, known)
    assert (mail.recipient.email, mail.recipient.language) == ("mentor@x.example", "de")


def test_an_address_in_two_audiences_of_one_template_is_written_once() -> None:
    event = sample("pearls.plan.milestone_overdue")
    mentor = event.mentor.model_copy(update={"email": INESE})  # type: ignore[union-attr]
    mails = mails_for(event.model_copy(update={"mentor": mentor}), KNOWN)
    assert sorted(m.recipient.email for m in mails) == [INESE, MARTINS]


def test_addresses_are_compared_case_insensitively() -> None:
    event = sample("pearls.mentor.registered").model_copy(
        update={"email": "Kadri.Tamm@Viljandi.example", "mentor_id": uuid.uuid4()}
    )
    [mail] = mails_for(event, KNOWN)
    assert mail.recipient.email == KADRI


def test_a_participant_that_withdrew_is_not_told_its_mentor_left_but_the_mentor_is() -> None:
    unassigned = sample("pearls.mentor.unassigned")
    withdrew = unassigned.model_copy(update={"reason_code": "participant_withdrawn"})
    known = Known(coordinators=Recipient.of("coordinators@pearls.example", "Coordinators", "en"))
    assert {m.template for m in mails_for(withdrew, known)} == {"mentee_unassigned"}
    assert {m.template for m in mails_for(unassigned, known)} == {
        "mentor_unassigned",
        "mentee_unassigned",
    }
