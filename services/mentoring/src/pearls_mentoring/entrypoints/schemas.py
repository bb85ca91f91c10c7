"""Request and response bodies of the HTTP API (pydantic, documented in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pearls_shared.events.common import (
    ContactPerson,
    CountryCode,
    LanguageCode,
    Languages,
    Themes,
    ThemeSlug,
)
from pearls_shared.events.mentoring import MatchExplanation
from pearls_shared.inputs import PlaceName
from pearls_shared.lines import FreeText as Text
from pearls_shared.lines import SingleLine as Name

Url = Annotated[AnyHttpUrl, Field(description="An http(s) link.")]
Summary = Annotated[Text, Field(max_length=500)]

BoundedThemes = Annotated[Themes, Field(max_length=30)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- mentors -------------------------------------------------------------------


class MentorIn(_In):
    kind: Literal["national_expert", "pearl_city"] = Field(
        description="A national expert, or an experienced pearl city mentoring newer ones."
    )
    name: Name = Field(description="The mentor, or the pearl city's contact person.")
    email: EmailStr
    language: LanguageCode = Field(description="Language of e-mail to the mentor.")
    languages: Languages = Field(description="Working languages the mentor can mentor in.")
    country: CountryCode
    city_name: PlaceName | None = Field(
        default=None,
        validate_default=True,
        description="The mentor's city; required for a pearl city.",
    )
    organisation: Name | None = None
    capacity: int = Field(ge=1, le=50, description="Participants the mentor takes at most.")
    themes: BoundedThemes = Field(description="Themes the mentor has experience in.")

    @field_validator("city_name")
    @classmethod
    def _pearl_city_has_city(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator, so the 422 names city_name (kind is validated before it).
        if info.data.get("kind") == "pearl_city" and not value:
            raise ValueError("required for a pearl city")
        return value

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "pearl_city",
                    "name": "Kadri Tamm",
                    "email": "kadri.tamm@viljandi.example",
                    "language": "et",
                    "languages": ["et", "en"],
                    "country": "EE",
                    "city_name": "Viljandi",
                    "capacity": 2,
                    "themes": ["culture_creative_industries", "leisure_youth_social"],
                }
            ]
        },
    )


class MentorOut(BaseModel):
    mentor_id: uuid.UUID
    kind: str
    name: str
    email: str
    language: str
    languages: list[str]
    country: str
    city_name: str | None
    organisation: str | None
    capacity: int
    load: int = Field(description="Participants the mentor has now.")
    themes: list[str]
    status: Literal["active", "paused"]
    registered_at: datetime | None


class MentorRegisteredOut(MentorOut):
    token: str = Field(description="The mentor's bearer token; shown once, stored hashed.")


class MentorTokenOut(BaseModel):
    mentor_id: uuid.UUID
    token: str = Field(description="The mentor's new bearer token; shown once, stored hashed.")


# -- participants and matching ------------------------------------------------------


class MentorBrief(BaseModel):
    mentor_id: uuid.UUID
    name: str | None


class WaitingOut(BaseModel):
    reasons: list[str] = Field(description="Why no mentor fits yet.")
    summary: str


class ParticipantOut(BaseModel):
    participant_id: uuid.UUID
    call_id: uuid.UUID | None
    city_name: str
    country: str
    themes: list[str]
    languages: list[str]
    contacts: list[ContactPerson]
    status: Literal["matched", "waiting", "withdrawn"]
    mentor: MentorBrief | None
    assigned_at: datetime | None
    explanation: MatchExplanation | None = Field(description="Why this mentor.")
    overridden_by_coordinator: bool
    waiting: WaitingOut | None = Field(description="Set while no mentor fits.")
    plan_status: str | None


class OverrideIn(_In):
    mentor_id: uuid.UUID
    reason: Text = Field(description="Why the coordinator chooses this mentor (audited).")


class MatchOut(BaseModel):
    participant_id: uuid.UUID
    mentor_id: uuid.UUID
    explanation: MatchExplanation


class UnmatchedOut(BaseModel):
    participant_id: uuid.UUID
    reasons: list[str]
    summary: str


class MatchRunOut(BaseModel):
    matched: list[MatchOut]
    unmatched: list[UnmatchedOut]


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    mentor_id: uuid.UUID | None
    details: dict[str, object]


# -- action plans ----------------------------------------------------------------------


class MilestoneIn(_In):
    milestone_id: uuid.UUID | None = Field(
        default=None, description="Keep a milestone of an earlier revision; omit for a new one."
    )
    title: Name
    due_date: date


class MeasureIn(_In):
    measure_id: uuid.UUID | None = Field(
        default=None, description="Keep a measure of an earlier revision; omit for a new one."
    )
    title: Name
    description: Text
    theme: ThemeSlug = Field(description="One of the participant's themes.")
    responsible: Name = Field(description="Who carries it out (never published).")
    starts_on: date
    ends_on: date
    share_consent: bool = Field(
        default=False,
        description="The participant agrees that the measure may be published in the playbook.",
    )


class PlanIn(_In):
    title: Name
    language: LanguageCode = Field(description="Language the plan is written in.")
    starts_on: date
    ends_on: date
    goals: list[Text] = Field(min_length=1, max_length=20)
    measures: list[MeasureIn] = Field(default_factory=list, max_length=50)
    milestones: list[MilestoneIn] = Field(min_length=1, max_length=50)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Culture keeps Kuldīga young",
                    "language": "en",
                    "starts_on": "2026-01-15",
                    "ends_on": "2026-12-15",
                    "goals": ["Young people run a festival of their own"],
                    "measures": [
                        {
                            "title": "Youth festival board",
                            "description": "Eight pupils plan the summer festival with staff.",
                            "theme": "leisure_youth_social",
                            "responsible": "Culture office",
                            "starts_on": "2026-02-01",
                            "ends_on": "2026-08-31",
                            "share_consent": True,
                        }
                    ],
                    "milestones": [{"title": "Festival board formed", "due_date": "2026-03-01"}],
                }
            ]
        },
    )


class ReviewIn(_In):
    revision: int = Field(ge=1, description="The revision reviewed (must be the current one).")
    decision: Literal["approve", "request_changes"]
    comments: Text | None = Field(default=None, description="Required when asking for changes.")


class ReportIn(_In):
    note: Text = Field(description="What was done (evidence, at most 4,000 characters).")
    evidence_urls: list[Annotated[Url, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=10, description="Links to evidence."
    )
    reached: bool = Field(description="True when this report marks the milestone reached.")


class ReportOut(BaseModel):
    plan_completed: bool


class MilestoneOut(BaseModel):
    milestone_id: uuid.UUID
    title: str
    due_date: date
    reached_at: datetime | None
    evidence_summary: str | None
    evidence_urls: list[str]
    overdue_noticed_on: date | None
    reports: int


class MeasureOut(BaseModel):
    measure_id: uuid.UUID
    title: str
    description: str
    theme: str
    responsible: str
    starts_on: date
    ends_on: date
    share_consent: bool


class RevisionOut(BaseModel):
    revision: int
    title: str
    language: str
    starts_on: date
    ends_on: date
    goals: list[str]
    measures: list[MeasureOut]
    milestones: list[MilestoneIn]
    submitted_at: datetime
    review_status: str
    reviewed_at: datetime | None
    comments: str | None


class PlanOut(BaseModel):
    plan_id: uuid.UUID
    participant_id: uuid.UUID
    status: Literal["submitted", "changes_requested", "approved", "completed"]
    current_revision: int
    approved_revision: int | None
    revisions: list[RevisionOut] = Field(description="Every revision, oldest first.")
    milestones: list[MilestoneOut] = Field(description="Progress on the approved milestones.")


# -- sessions ----------------------------------------------------------------------------


class SessionIn(_In):
    title: Name
    language: LanguageCode
    time_zone: str = Field(
        max_length=64, description="IANA time zone, e.g. Europe/Riga.", examples=["Europe/Riga"]
    )
    starts_at: datetime = Field(
        description="Start; without an offset it is wall-clock time in time_zone."
    )
    ends_at: datetime = Field(description="End; without an offset, wall-clock time in time_zone.")
    location: Name | None = None
    online_url: Url | None = None
    themes: BoundedThemes
    agenda: list[Text] = Field(default_factory=list, max_length=30)
    host_mentor_ids: list[uuid.UUID] = Field(min_length=1, max_length=10)
    participant_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.host_mentor_ids)) != len(self.host_mentor_ids):
            raise ValueError("host_mentor_ids must be unique")
        if len(set(self.participant_ids)) != len(self.participant_ids):
            raise ValueError("participant_ids must be unique")
        return self


class SessionOut(BaseModel):
    session_id: uuid.UUID
    title: str
    language: str
    time_zone: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    location: str | None
    online_url: str | None
    themes: list[str]
    agenda: list[str]
    host_mentor_ids: list[uuid.UUID]
    participant_ids: list[uuid.UUID]
    attended: list[uuid.UUID] | None
    notes: str | None


class AttendanceIn(_In):
    attended: list[uuid.UUID] = Field(max_length=100)
    notes: Text | None = None


class ProposedMember(BaseModel):
    participant_id: uuid.UUID
    city_name: str
    country: str


class ProposalOut(BaseModel):
    theme: str
    language: str | None = Field(description="A working language all members share, if any.")
    why: str
    participants: list[ProposedMember]


# -- playbook -------------------------------------------------------------------------


class PracticeIn(_In):
    theme: ThemeSlug
    language: LanguageCode
    title: Name
    summary: Summary
    body: Text
    city_name: PlaceName | None = Field(default=None, description="Where it was done, if anywhere.")
    country: CountryCode | None = None


class PracticeOut(BaseModel):
    entry_id: uuid.UUID
    theme: str
    language: str
    title: str
    summary: str
    body: str
    city_name: str | None
    country: str | None
    source: Literal["curated", "action_plan"]
    published_at: datetime
