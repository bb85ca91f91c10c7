"""A valid, realistic instance of every event type, for tests and documentation.

One story runs through them: Kuldīga (LV) applies to the 2025 call, is
accepted, is mentored by the pearl city Viljandi (EE), carries out its action
plan and wins the award. Ids are derived from names, so samples are stable.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

from pearls_shared.events import applications as app
from pearls_shared.events import awards as awd
from pearls_shared.events import mentoring as men
from pearls_shared.events import notifications as ntf
from pearls_shared.events.base import EventData
from pearls_shared.events.common import (
    DEFAULT_THEMES,
    ContactPerson,
    MentorRef,
    Milestone,
    PersonRef,
)
from pearls_shared.events.registry import UnknownEventType

_NS = uuid.UUID("6f1c1c52-8a43-4c43-9f3e-5b0a7e3c2d10")


def sample_id(name: str) -> uuid.UUID:
    """A stable UUID for a sample entity, e.g. ``sample_id("application:kuldiga")``."""
    return uuid.uuid5(_NS, name)


def _at(month: int, day: int, hour: int = 9, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


CALL_ID = sample_id("call:2025")
APPLICATION_ID = sample_id("application:kuldiga")
MENTOR_ID = sample_id("mentor:viljandi")
PLAN_ID = sample_id("plan:kuldiga")
SESSION_ID = sample_id("session:festival-volunteers")
ROUND_ID = sample_id("round:2026")

CITY, COUNTRY, POPULATION = "Kuldīga", "LV", 10_600
THEMES = ("culture_creative_industries", "leisure_youth_social")
CONTACTS = (
    ContactPerson(
        name="Inese Bērziņa", email="inese.berzina@kuldiga.example", language="lv", role="primary"
    ),
    ContactPerson(
        name="Mārtiņš Ozols", email="martins.ozols@kuldiga.example", language="en", role="backup"
    ),
)
MENTOR = MentorRef(
    mentor_id=MENTOR_ID, name="Kadri Tamm", email="kadri.tamm@viljandi.example", language="et"
)
MILESTONES = (
    Milestone(
        milestone_id=sample_id("milestone:map"),
        title="Map of empty ground-floor spaces",
        due_date=date(2026, 3, 31),
    ),
    Milestone(
        milestone_id=sample_id("milestone:residency"),
        title="First youth art residency",
        due_date=date(2026, 6, 30),
    ),
    Milestone(
        milestone_id=sample_id("milestone:festival"),
        title="Riverside festival run by volunteers",
        due_date=date(2026, 8, 31),
    ),
)
JURORS = (
    PersonRef(
        person_id=sample_id("juror:kowalska"),
        name="Anna Kowalska",
        email="anna.kowalska@jury.example",
        language="pl",
    ),
    PersonRef(
        person_id=sample_id("juror:nilsson"),
        name="Lars Nilsson",
        email="lars.nilsson@jury.example",
        language="sv",
    ),
)
_ACHIEVEMENTS = (
    "Six empty shop fronts in the old town reopened as studios for young artists.",
    "A volunteer-run riverside festival drew 4,000 visitors in its first year.",
)
_CITATION = {
    "en": "Kuldīga turned empty old-town spaces into a living stage for its young people.",
    "lv": "Kuldīga pārvērta tukšās vecpilsētas telpas par dzīvu skatuvi saviem jauniešiem.",
}
_PARTICIPANT = {"participant_id": APPLICATION_ID, "city_name": CITY}
_DECISION = {
    "application_id": APPLICATION_ID,
    "call_id": CALL_ID,
    "decided_at": _at(12, 15),
    "city_name": CITY,
    "country": COUNTRY,
    "contacts": CONTACTS,
}
_NOTIFICATION = {
    "recipient": CONTACTS[0].email,
    "notification_id": sample_id("notification:accepted:inese"),
    "template": "application_accepted",
    "language": "lv",
    "cause_event_id": str(sample_id("event:accepted")),
    "cause_event_type": "pearls.application.accepted",
    "message_id": f"<{sample_id('message:accepted:inese')}@pearls.example>",
}

_ERASED_HASH = hmac.new(
    b"sample-erasure-key", b"inese.berzina@kuldiga.example", hashlib.sha256
).hexdigest()

_BUILDERS: dict[str, Callable[[], EventData]] = {
    "pearls.call.opened": lambda: app.CallOpened(
        call_id=CALL_ID,
        title={
            "en": "Learning and mentoring programme 2025",
            "lv": "Mācību un mentoringa programma 2025",
        },
        opens_at=_at(9, 1),
        closes_at=_at(11, 15, 22),
        places=12,
        themes=DEFAULT_THEMES,
        eligible_countries=("DK", "EE", "FI", "DE", "IS", "LV", "LT", "NO", "PL", "SE"),
        population_min=2_000,
        population_max=200_000,
        public_url="https://pearls.example/calls/2025",
    ),
    "pearls.call.closed": lambda: app.CallClosed(
        call_id=CALL_ID, closed_at=_at(11, 15, 22), closed_early=False, applications_received=37
    ),
    "pearls.application.submitted": lambda: app.ApplicationSubmitted(
        application_id=APPLICATION_ID,
        call_id=CALL_ID,
        submitted_at=_at(10, 20, 14),
        city_name=CITY,
        place_kind="city",
        country=COUNTRY,
        population=POPULATION,
        organisation_name="Kuldīga Municipality",
        organisation_type="municipality",
        contacts=CONTACTS,
        themes=THEMES,
        languages=("lv", "en"),
        summary="We want to bring young people back into the old town's empty buildings.",
    ),
    "pearls.application.withdrawn": lambda: app.ApplicationWithdrawn(
        application_id=APPLICATION_ID,
        call_id=CALL_ID,
        withdrawn_at=_at(12, 20),
        previous_status="waitlisted",
        city_name=CITY,
        country=COUNTRY,
        contacts=CONTACTS,
        reason="The council did not approve co-financing this year.",
    ),
    "pearls.application.reviewed": lambda: app.ApplicationReviewed(
        application_id=APPLICATION_ID,
        call_id=CALL_ID,
        reviewed_at=_at(12, 1),
        score=84.5,
        review_count=2,
        reviewers_assigned=3,
    ),
    "pearls.application.accepted": lambda: app.ApplicationAccepted(
        **_DECISION,
        population=POPULATION,
        themes=THEMES,
        languages=("lv", "en"),
        rank=3,
        score=86.0,
        from_waitlist=False,
    ),
    "pearls.application.rejected": lambda: app.ApplicationRejected(
        **_DECISION,
        reason_code="not_selected",
        rank=15,
        score=61.0,
        reason="Strong application, but the twelve places went to higher-ranked applicants.",
    ),
    "pearls.application.waitlisted": lambda: app.ApplicationWaitlisted(
        **_DECISION, waitlist_position=2, rank=14, score=71.5
    ),
    "pearls.application.contacts_changed": lambda: app.ApplicationContactsChanged(
        application_id=APPLICATION_ID,
        call_id=CALL_ID,
        changed_at=_at(12, 18),
        city_name=CITY,
        contacts=(
            ContactPerson(
                name="Mārtiņš Ozols",
                email="martins.ozols@kuldiga.example",
                language="en",
                role="primary",
            ),
            ContactPerson(
                name="Līga Kalniņa",
                email="liga.kalnina@kuldiga.example",
                language="lv",
                role="backup",
            ),
        ),
    ),
    "pearls.person.erased": lambda: app.PersonErased(
        erasure_id=sample_id("erasure:inese"),
        requested_at=_at(12, 19),
        scope="person",
        # HMAC-SHA256 of "inese.berzina@kuldiga.example" with the key "sample-erasure-key".
        email_hashes=(_ERASED_HASH,),
    ),
    "pearls.mentor.registered": lambda: men.MentorRegistered(
        mentor_id=MENTOR_ID,
        kind="pearl_city",
        name=MENTOR.name,
        email=MENTOR.email,
        language="et",
        languages=("et", "en"),
        country="EE",
        city_name="Viljandi",
        organisation="Viljandi City Government",
        capacity=2,
        themes=THEMES,
        registered_at=_at(11, 3),
    ),
    "pearls.mentor.assigned": lambda: men.MentorAssigned(
        **_PARTICIPANT,
        mentor=MENTOR,
        assigned_at=_at(12, 18),
        country=COUNTRY,
        contacts=CONTACTS,
        explanation=men.MatchExplanation(
            summary="Viljandi shares English and both themes, and mentors across the border.",
            shared_languages=("en",),
            shared_themes=THEMES,
            cross_border=True,
            score=0.92,
            criteria={"theme_overlap": 0.6, "cross_border": 0.2, "balanced_load": 0.12},
            constraints_met=("capacity", "shared_language", "not_own_city"),
        ),
        overridden_by_coordinator=False,
    ),
    "pearls.mentor.unassigned": lambda: men.MentorUnassigned(
        **_PARTICIPANT,
        mentor=MENTOR,
        unassigned_at=_at(2, 2, year=2026),
        contacts=CONTACTS,
        reason_code="mentor_withdrawn",
        reason="Viljandi's mentor went on parental leave.",
    ),
    "pearls.mentor.unmatched": lambda: men.MentorUnmatched(
        participant_id=APPLICATION_ID,
        detected_at=_at(12, 18),
        city_name=CITY,
        country=COUNTRY,
        languages=("lv",),
        themes=THEMES,
        reasons=("no_shared_language",),
        summary="No active mentor with free capacity works in Latvian.",
    ),
    "pearls.session.scheduled": lambda: men.SessionScheduled(
        session_id=SESSION_ID,
        title="Running festivals with volunteers",
        language="en",
        starts_at=_at(4, 14, 10, year=2026),
        ends_at=_at(4, 14, 12, year=2026),
        online_url="https://meet.pearls.example/festival-volunteers",
        themes=("leisure_youth_social",),
        hosts=(MENTOR,),
        participants=(
            men.SessionParticipant(
                participant_id=APPLICATION_ID, city_name=CITY, country=COUNTRY, contacts=CONTACTS
            ),
        ),
    ),
    "pearls.plan.submitted": lambda: men.PlanSubmitted(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        revision=1,
        submitted_at=_at(1, 30, year=2026),
        title="Old town, young town",
        mentor=MENTOR,
        milestones=MILESTONES,
        goals=(
            "Young people create and show art in the old town.",
            "Residents run a yearly riverside festival themselves.",
        ),
    ),
    "pearls.plan.approved": lambda: men.PlanApproved(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        revision=2,
        approved_at=_at(2, 20, year=2026),
        mentor=MENTOR,
        country=COUNTRY,
        contacts=CONTACTS,
        milestones=MILESTONES,
    ),
    "pearls.plan.changes_requested": lambda: men.PlanChangesRequested(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        revision=1,
        requested_at=_at(2, 6, year=2026),
        mentor=MENTOR,
        contacts=CONTACTS,
        comments="Please add who runs the festival after the programme ends.",
    ),
    "pearls.plan.milestone_reached": lambda: men.MilestoneReached(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        milestone=MILESTONES[0],
        reached_at=_at(3, 27, year=2026),
        mentor=MENTOR,
        evidence_summary="Survey of the old town done with the heritage office: 14 spaces.",
        evidence_urls=("https://kuldiga.example/old-town-map",),
        milestones_reached=1,
        milestones_total=3,
    ),
    "pearls.plan.milestone_overdue": lambda: men.MilestoneOverdue(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        milestone=MILESTONES[1],
        detected_on=date(2026, 7, 3),
        days_overdue=3,
        contacts=CONTACTS,
        mentor=MENTOR,
    ),
    "pearls.plan.completed": lambda: men.PlanCompleted(
        plan_id=PLAN_ID,
        **_PARTICIPANT,
        completed_at=_at(9, 15, year=2026),
        milestones_reached=3,
        milestones_total=3,
        achievements=_ACHIEVEMENTS,
        country=COUNTRY,
        contacts=CONTACTS,
        mentor=MENTOR,
    ),
    "pearls.award.round_opened": lambda: awd.AwardRoundOpened(
        round_id=ROUND_ID,
        title={"en": "BSR Cultural Pearls Award 2026"},
        opened_at=_at(9, 1, year=2026),
        closes_at=_at(10, 31, 22, year=2026),
        criteria=(
            awd.Criterion(
                criterion_id="community_engagement", name={"en": "Community engagement"}, weight=2
            ),
            awd.Criterion(
                criterion_id="resilience_impact",
                name={"en": "Impact on social resilience"},
                weight=2,
            ),
            awd.Criterion(
                criterion_id="transferability", name={"en": "What other cities can learn"}, weight=1
            ),
        ),
        eligibility=awd.Eligibility(plan_approved_required=True, min_milestone_share=0.5),
        awards_count=3,
        additional_award_allowed=True,
        jurors=JURORS,
        tie_break_rule="Higher score on community_engagement, then earlier plan approval.",
    ),
    "pearls.award.nominated": lambda: awd.AwardNominated(
        round_id=ROUND_ID,
        participant_id=APPLICATION_ID,
        nominated_at=_at(9, 20, year=2026),
        city_name=CITY,
        country=COUNTRY,
        contacts=CONTACTS,
        themes=THEMES,
    ),
    "pearls.award.granted": lambda: awd.AwardGranted(
        round_id=ROUND_ID,
        participant_id=APPLICATION_ID,
        granted_at=_at(11, 5, year=2026),
        city_name=CITY,
        country=COUNTRY,
        contacts=CONTACTS,
        rank=1,
        score=91.25,
        additional_award=False,
        citation=_CITATION,
        themes=THEMES,
        achievements=_ACHIEVEMENTS,
    ),
    "pearls.award.revoked": lambda: awd.AwardRevoked(
        round_id=ROUND_ID,
        participant_id=APPLICATION_ID,
        revoked_at=_at(12, 1, year=2026),
        city_name=CITY,
        country=COUNTRY,
        contacts=CONTACTS,
        reason="The festival named in the citation did not take place.",
    ),
    "pearls.award.round_closed": lambda: awd.AwardRoundClosed(
        round_id=ROUND_ID,
        closed_at=_at(11, 5, year=2026),
        nominees_count=9,
        jurors=JURORS,
        winners=(
            awd.Winner(
                participant_id=APPLICATION_ID,
                city_name=CITY,
                country=COUNTRY,
                rank=1,
                score=91.25,
                additional_award=False,
            ),
        ),
    ),
    "pearls.notification.sent": lambda: ntf.NotificationSent(
        **_NOTIFICATION, attempts=1, sent_at=_at(12, 15, 10)
    ),
    "pearls.notification.failed": lambda: ntf.NotificationFailed(
        **_NOTIFICATION,
        attempts=5,
        failed_at=_at(12, 15, 14),
        permanent=False,
        reason="451 4.7.1 Greylisted, try again later",
        smtp_code=451,
    ),
}


def sample(event_type: str) -> EventData:
    """A valid instance of ``event_type``; raises UnknownEventType for other names."""
    try:
        build = _BUILDERS[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    return build()


def sample_types() -> tuple[str, ...]:
    return tuple(_BUILDERS)
