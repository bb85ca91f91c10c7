"""Events of the mentoring service: mentors, matches, action plans, sessions.

Topic ``pearls.mentoring.v1``. Mentor registration is keyed by ``mentor_id``,
a session by ``session_id``; everything about one participant (matches and
its action plan) is keyed by ``participant_id`` (= the application id) so that
it stays in order on one partition.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal, Self

from pydantic import AnyUrl, AwareDatetime, Field, model_validator

from pearls_shared import topics
from pearls_shared.events.base import EventData
from pearls_shared.events.common import (
    Contacts,
    CountryCode,
    EmailStr,
    LanguageCode,
    Languages,
    MentorRef,
    Milestone,
    Name,
    Slug,
    Text,
    Themes,
    ThemeSlug,
    Value,
)

_PARTICIPANT_ID = "Id of the participant (= its application id in pearls.applications.v1)."
_PLAN_ID = "Id of the action plan."
_CITY = "Name of the participant city or region."
_COUNTRY = "Country of the participant, ISO 3166-1 alpha-2."
_CONTACTS = "The participant's contact persons: exactly one primary, any number of backups."


class _MentoringEvent(EventData):
    topic: ClassVar[str] = topics.MENTORING
    producer: ClassVar[str] = "mentoring"


class _ParticipantEvent(_MentoringEvent):
    key_field: ClassVar[str] = "participant_id"


class MentorRegistered(_MentoringEvent):
    """A coordinator registered a mentor: a national expert or an experienced pearl city."""

    event_type: ClassVar[str] = "pearls.mentor.registered"
    key_field: ClassVar[str] = "mentor_id"

    mentor_id: uuid.UUID = Field(description="Id of the mentor.")
    kind: Literal["national_expert", "pearl_city"] = Field(
        description="A national expert (one or more per country) or a former participant city."
    )
    name: Name = Field(description="Name of the person, or of the pearl city's contact person.")
    email: EmailStr = Field(description="E-mail address of the mentor.")
    language: LanguageCode = Field(description="Preferred language for e-mail to the mentor.")
    languages: Languages = Field(description="Working languages the mentor can mentor in.")
    country: CountryCode = Field(description="Country of the mentor, ISO 3166-1 alpha-2.")
    city_name: Name | None = Field(
        default=None,
        description="The mentor's city (the pearl city itself); a mentor never mentors it.",
    )
    organisation: Name | None = Field(default=None, description="Organisation, if any.")
    capacity: int = Field(ge=1, description="How many participants the mentor takes at most.")
    themes: Themes = Field(description="Themes the mentor has experience in.")
    registered_at: AwareDatetime = Field(description="When the mentor was registered.")


class MatchExplanation(Value):
    """Why this mentor was matched with this participant."""

    summary: Text = Field(description="Human-readable explanation, in English.")
    shared_languages: Languages = Field(description="Working languages both sides share.")
    shared_themes: tuple[ThemeSlug, ...] = Field(
        description="Themes of the participant the mentor has experience in (may be empty)."
    )
    cross_border: bool = Field(
        description="True when mentor and participant are in different countries."
    )
    score: float | None = Field(
        default=None, ge=0, description="Matching score; higher is better. Null when overridden."
    )
    criteria: dict[Slug, float] = Field(
        default_factory=dict,
        description="Points per matching criterion (theme_overlap, cross_border, balanced_load);"
        " they add up to the score. Empty when overridden.",
    )
    constraints_met: tuple[Slug, ...] = Field(
        default=(),
        description="Hard constraints checked and met (capacity, shared_language, not_own_city).",
    )


class MentorAssigned(_ParticipantEvent):
    """A participant got a mentor, by the matching rules or a coordinator's override."""

    event_type: ClassVar[str] = "pearls.mentor.assigned"

    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    mentor: MentorRef = Field(description="The assigned mentor.")
    assigned_at: AwareDatetime = Field(description="When the assignment took effect.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    explanation: MatchExplanation = Field(description="Why this mentor.")
    overridden_by_coordinator: bool = Field(
        description="True when a coordinator chose the mentor instead of the proposed match."
    )
    override_reason: Text | None = Field(
        default=None, description="The coordinator's reason for an override."
    )
    replaces_mentor_id: uuid.UUID | None = Field(
        default=None, description="The previous mentor, when this assignment replaces one."
    )


class MentorUnassigned(_ParticipantEvent):
    """A mentor no longer supports a participant."""

    event_type: ClassVar[str] = "pearls.mentor.unassigned"

    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    mentor: MentorRef = Field(description="The mentor who was unassigned.")
    unassigned_at: AwareDatetime = Field(description="When the assignment ended.")
    city_name: Name = Field(description=_CITY)
    contacts: Contacts = Field(description=_CONTACTS)
    reason_code: Literal["participant_withdrawn", "reassigned", "mentor_withdrawn", "other"] = (
        Field(description="Why the assignment ended.")
    )
    reason: Text | None = Field(default=None, description="Free-text explanation, if any.")


class MentorUnmatched(_ParticipantEvent):
    """No mentor can take a participant now; it waits, and coordinators are asked to act."""

    event_type: ClassVar[str] = "pearls.mentor.unmatched"

    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    detected_at: AwareDatetime = Field(description="When the matching found no mentor.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    languages: Languages = Field(description="The participant's working languages.")
    themes: Themes = Field(description="The participant's themes.")
    reasons: tuple[Slug, ...] = Field(
        min_length=1,
        description="Why no mentor fits: no_active_mentor, no_shared_language, all_full,"
        " only_own_city (one or more).",
    )
    summary: Text = Field(description="Human-readable explanation, in English.")


class SessionParticipant(Value):
    """A participant invited to a co-learning session."""

    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)


class SessionScheduled(_MentoringEvent):
    """A co-learning session was scheduled for participants with shared themes."""

    event_type: ClassVar[str] = "pearls.session.scheduled"
    key_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Id of the session.")
    title: Name = Field(description="Title of the session, in its language.")
    language: LanguageCode = Field(description="Language the session is held in.")
    starts_at: AwareDatetime = Field(description="Start of the session.")
    ends_at: AwareDatetime = Field(description="End of the session.")
    location: Name | None = Field(
        default=None, description="Venue for an in-person session; null when online only."
    )
    online_url: AnyUrl | None = Field(default=None, description="Link to join online, if any.")
    themes: Themes = Field(description="Themes the session is about.")
    hosts: tuple[MentorRef, ...] = Field(min_length=1, description="Mentors hosting the session.")
    participants: tuple[SessionParticipant, ...] = Field(
        min_length=1, description="Participants invited."
    )

    @model_validator(mode="after")
    def _times(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class PlanSubmitted(_ParticipantEvent):
    """A participant submitted (a revision of) its action plan for the mentor's review."""

    event_type: ClassVar[str] = "pearls.plan.submitted"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    revision: int = Field(ge=1, description="Revision number; 1 for the first submission.")
    submitted_at: AwareDatetime = Field(description="When the plan was submitted.")
    city_name: Name = Field(description=_CITY)
    title: Name = Field(description="Title of the action plan.")
    goals: tuple[Text, ...] = Field(min_length=1, description="The plan's goals.")
    milestones: tuple[Milestone, ...] = Field(
        min_length=1, description="Milestones with due dates, in due-date order."
    )
    mentor: MentorRef | None = Field(
        default=None, description="The mentor who reviews the plan; null if none is assigned yet."
    )


class PlanApproved(_ParticipantEvent):
    """The mentor approved the action plan; implementation starts."""

    event_type: ClassVar[str] = "pearls.plan.approved"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    revision: int = Field(ge=1, description="The approved revision.")
    approved_at: AwareDatetime = Field(description="When the plan was approved.")
    mentor: MentorRef = Field(description="The mentor who approved it.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    milestones: tuple[Milestone, ...] = Field(
        min_length=1, description="The approved milestones; progress is measured against them."
    )


class PlanChangesRequested(_ParticipantEvent):
    """The mentor asked for changes to the action plan before approving it."""

    event_type: ClassVar[str] = "pearls.plan.changes_requested"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    revision: int = Field(ge=1, description="The revision the comments are about.")
    requested_at: AwareDatetime = Field(description="When the mentor asked for changes.")
    mentor: MentorRef = Field(description="The mentor asking for changes.")
    city_name: Name = Field(description=_CITY)
    contacts: Contacts = Field(description=_CONTACTS)
    comments: Text = Field(description="What the mentor wants changed.")


class MilestoneReached(_ParticipantEvent):
    """A participant reported a milestone as reached, with evidence."""

    event_type: ClassVar[str] = "pearls.plan.milestone_reached"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    milestone: Milestone = Field(description="The milestone reached.")
    reached_at: AwareDatetime = Field(description="When the participant reported it.")
    evidence_summary: Text = Field(description="What was done, as reported by the participant.")
    evidence_urls: tuple[AnyUrl, ...] = Field(
        default=(), description="Links to evidence (photos, articles, minutes)."
    )
    milestones_reached: int = Field(ge=1, description="Milestones of the plan reached so far.")
    milestones_total: int = Field(ge=1, description="Milestones in the approved plan.")
    city_name: Name = Field(description=_CITY)
    mentor: MentorRef | None = Field(default=None, description="The participant's mentor.")

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if self.milestones_reached > self.milestones_total:
            raise ValueError("milestones_reached must not exceed milestones_total")
        return self


class MilestoneOverdue(_ParticipantEvent):
    """A milestone passed its due date without being reported as reached."""

    event_type: ClassVar[str] = "pearls.plan.milestone_overdue"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    milestone: Milestone = Field(description="The overdue milestone.")
    detected_on: date = Field(description="The day the overdue milestone was noticed.")
    days_overdue: int = Field(ge=1, description="Whole days past the due date.")
    city_name: Name = Field(description=_CITY)
    contacts: Contacts = Field(description=_CONTACTS)
    mentor: MentorRef | None = Field(default=None, description="The participant's mentor.")


class PlanCompleted(_ParticipantEvent):
    """An action plan was completed; its achievements feed the award showcase."""

    event_type: ClassVar[str] = "pearls.plan.completed"

    plan_id: uuid.UUID = Field(description=_PLAN_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    completed_at: AwareDatetime = Field(description="When the plan was completed.")
    milestones_reached: int = Field(ge=0, description="Milestones reached.")
    milestones_total: int = Field(ge=1, description="Milestones in the approved plan.")
    achievements: tuple[Text, ...] = Field(
        min_length=1, description="What the plan achieved, one sentence each (for the showcase)."
    )
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    mentor: MentorRef | None = Field(default=None, description="The participant's mentor.")

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if self.milestones_reached > self.milestones_total:
            raise ValueError("milestones_reached must not exceed milestones_total")
        return self


EVENTS: tuple[type[EventData], ...] = (
    MentorRegistered,
    MentorAssigned,
    MentorUnassigned,
    MentorUnmatched,
    SessionScheduled,
    PlanSubmitted,
    PlanApproved,
    PlanChangesRequested,
    MilestoneReached,
    MilestoneOverdue,
    PlanCompleted,
)
