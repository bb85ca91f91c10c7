"""Request and response bodies of the HTTP API (pydantic, documented in OpenAPI)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, model_validator

from pearls_shared.events.common import (
    FALLBACK_LANGUAGE,
    CountryCode,
    LanguageCode,
    Slug,
)
from pearls_shared.inputs import PlaceName
from pearls_shared.lines import FreeText, SingleLine

Localized = Annotated[
    dict[LanguageCode, FreeText],
    Field(min_length=1, json_schema_extra={"required": [FALLBACK_LANGUAGE]}),
]
LocalizedLine = Annotated[
    dict[LanguageCode, SingleLine],
    Field(min_length=1, json_schema_extra={"required": [FALLBACK_LANGUAGE]}),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _has_english(text: Mapping[Any, str], field: str) -> None:
    if FALLBACK_LANGUAGE not in text:
        raise ValueError(f"{field} needs a text in {FALLBACK_LANGUAGE!r}, the fallback")


class CriterionIn(_In):
    criterion_id: Slug
    name: LocalizedLine
    weight: float = Field(gt=0, le=1000)
    scale_min: int = Field(default=0, ge=0, le=100)
    scale_max: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _has_english(self.name, "name")
        if self.scale_max <= self.scale_min:
            raise ValueError("scale_max must be above scale_min")
        return self


class EligibilityIn(_In):
    plan_approved_required: bool = True
    min_milestone_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of approved milestones reached (0-1)."
    )
    call_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)


class JurorIn(_In):
    name: SingleLine
    email: EmailStr
    language: LanguageCode
    city_name: PlaceName | None = Field(default=None, description="Where the juror comes from.")
    country: CountryCode | None = None
    mentor_id: uuid.UUID | None = Field(
        default=None, description="If the juror is a registered mentor (conflicts by mentoring)."
    )


class RoundIn(_In):
    title: LocalizedLine
    closes_at: AwareDatetime = Field(description="End of jury scoring.")
    criteria: list[CriterionIn] = Field(min_length=1, max_length=20)
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    awards_count: int = Field(default=3, ge=1, le=50)
    per_country: int = Field(default=1, ge=1, le=50, description="Regular awards per country.")
    additional_award_allowed: bool = True
    tight_margin: float = Field(
        default=2.0, ge=0, le=100, description="Scores this close (0-100 scale) count as tight."
    )
    normalise: bool = Field(default=False, description="z-score each juror's scores.")
    jurors: list[JurorIn] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _has_english(self.title, "title")
        ids = [c.criterion_id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError("criterion ids must be unique")
        emails = [j.email.casefold() for j in self.jurors]
        if len(set(emails)) != len(emails):
            raise ValueError("each juror once (e-mail addresses repeat)")
        return self


class JurorOut(BaseModel):
    juror_id: uuid.UUID
    name: str
    email: str
    language: str
    city_name: str | None
    country: str | None


class JurorTokenOut(JurorOut):
    token: str = Field(description="The juror's bearer token; shown once, stored hashed.")


class CriterionOut(BaseModel):
    criterion_id: str
    name: dict[str, str]
    weight: float
    scale_min: int
    scale_max: int


class RoundOut(BaseModel):
    round_id: uuid.UUID
    title: dict[str, str]
    opened_at: datetime
    closes_at: datetime
    status: Literal["open", "closed"]
    criteria: list[CriterionOut]
    eligibility: EligibilityIn
    awards_count: int
    per_country: int
    additional_award_allowed: bool
    tight_margin: float
    normalise: bool
    tie_break_rule: str
    jurors: list[JurorOut]
    closed_at: datetime | None


class OpenedOut(RoundOut):
    juror_tokens: list[JurorTokenOut]
    nominated: int = Field(description="Participants nominated at once (eligible already).")


class NominationIn(_In):
    participant_id: uuid.UUID
    statement: FreeText = Field(description="Why the participant deserves the award.")


class NomineeOut(BaseModel):
    participant_id: uuid.UUID
    city_name: str | None
    country: str | None
    nominated_at: datetime
    nominated_by: str
    statement: str | None
    milestones_reached: int
    milestones_total: int
    plan_status: str | None


class ExclusionOut(BaseModel):
    juror_id: uuid.UUID
    participant_id: uuid.UUID
    reason: Literal["mentored", "same_city"]
    detail: str


class ScoresIn(_In):
    scores: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=-1000, le=1000)]] = (
        Field(description="A score per criterion id, every criterion, within its scale.")
    )


class StandingOut(BaseModel):
    participant_id: uuid.UUID
    city_name: str
    country: str
    score: float
    raw_score: float
    jurors: int
    position: int


class WinnerOut(BaseModel):
    participant_id: uuid.UUID
    rank: int
    score: float
    additional_award: bool
    reason: str


class RunnerUpOut(BaseModel):
    participant_id: uuid.UUID
    score: float
    reason_code: str
    reason: str


class ResultOut(BaseModel):
    status: Literal["provisional", "final"]
    tie_break_rule: str
    standings: list[StandingOut]
    winners: list[WinnerOut]
    runners_up: list[RunnerUpOut]
    exclusions: list[ExclusionOut]


class CloseIn(_In):
    citations: dict[uuid.UUID, Localized] = Field(
        default_factory=dict,
        max_length=100,
        description="The jury's citation per winner (participant id -> text per language,"
        " 'en' required); a winner without one gets a citation from its achievements.",
    )
    grant_additional: bool = Field(
        default=True,
        description="The jury gives the additional award when the rule allows it.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        for text in self.citations.values():
            _has_english(text, "each citation")
        return self


class RevokeIn(_In):
    reason: FreeText


class ParticipantOut(BaseModel):
    participant_id: uuid.UUID
    city_name: str | None
    country: str | None
    themes: list[str]
    withdrawn: bool
    plan_status: str | None
    milestones_reached: int
    milestones_total: int
    milestones_overdue: int
    current_mentor_id: str | None


class PearlOut(BaseModel):
    """A pearl as the public sees it: no personal data."""

    slug: str
    url: str
    city_name: str
    country: str
    year: int
    round_id: uuid.UUID
    round_title: str
    rank: int
    additional_award: bool
    citation: dict[str, str]
    themes: list[str]
    achievements: list[str]
    granted_at: datetime
