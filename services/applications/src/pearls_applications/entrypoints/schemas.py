"""Request and response bodies of the HTTP API (they are the OpenAPI schema).

Text is checked here for shape and size: names and titles are single lines and
free text keeps only line breaks and tabs (``pearls_shared.lines``), a place name
is a ``pearls_shared.inputs.PlaceName``; rules that depend on the call
(eligibility, themes, rubric) are the domain's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from pearls_applications.domain.model import Decision, OrganisationType, PlaceKind, ReasonCode
from pearls_shared.events.common import (
    BSR_COUNTRIES,
    DEFAULT_THEMES,
    FALLBACK_LANGUAGE,
    CountryCode,
    LanguageCode,
    Slug,
    ThemeSlug,
)
from pearls_shared.inputs import PlaceName
from pearls_shared.lines import FreeText, SingleLine

ReviewerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


def _has_fallback(text: dict[str, str]) -> dict[str, str]:
    if FALLBACK_LANGUAGE not in text:
        raise ValueError(f"a text in {FALLBACK_LANGUAGE!r} is required as the fallback")
    return text


Localized = Annotated[
    dict[LanguageCode, FreeText],
    Field(json_schema_extra={"required": [FALLBACK_LANGUAGE]}),
    AfterValidator(_has_fallback),
]
LocalizedLine = Annotated[
    dict[LanguageCode, SingleLine],
    Field(json_schema_extra={"required": [FALLBACK_LANGUAGE]}),
    AfterValidator(_has_fallback),
]


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- calls -------------------------------------------------------------------


class CriterionIn(_In):
    key: Slug = Field(description="Criterion id used in review scores, e.g. 'relevance'.")
    label: LocalizedLine = Field(description="What reviewers judge, per language ('en' required).")
    weight: float = Field(gt=0, le=100, description="Relative weight of the criterion.")


class RubricIn(_In):
    scale_min: int = Field(default=1, ge=0, le=100, description="Lowest score of every criterion.")
    scale_max: int = Field(default=5, ge=1, le=100, description="Highest score of every criterion.")
    criteria: Annotated[list[CriterionIn], Field(min_length=1, max_length=20)]


class CallIn(_In):
    """A new call; omitted ``opens_at`` (or one in the past) opens it at once."""

    title: LocalizedLine = Field(description="Title per language; 'en' required.")
    description: Localized = Field(description="Description per language; 'en' required.")
    opens_at: AwareDatetime | None = Field(
        default=None, description="When submissions start; omitted = now (opens at once)."
    )
    closes_at: AwareDatetime = Field(description="When submissions end; the call closes itself.")
    places: int = Field(ge=1, le=10_000, description="How many participants will be accepted.")
    themes: Annotated[
        list[ThemeSlug], Field(min_length=1, max_length=30), AfterValidator(_unique)
    ] = Field(default_factory=lambda: list(DEFAULT_THEMES), description="Themes offered.")
    eligible_countries: Annotated[
        list[CountryCode], Field(min_length=1, max_length=60), AfterValidator(_unique)
    ] = Field(default_factory=lambda: list(BSR_COUNTRIES), description="ISO 3166-1 alpha-2.")
    population_min: int = Field(default=1, ge=0, le=100_000_000, description="Inclusive.")
    population_max: int = Field(default=250_000, ge=1, le=100_000_000, description="Inclusive.")
    rubric: RubricIn
    reviews_required: int = Field(default=2, ge=1, le=20, description="Reviews per application.")
    conflict_same_country: bool = Field(
        default=False, description="Reviewers from the applicant's country are conflicted too."
    )
    public_url: AnyHttpUrl | None = Field(default=None, description="Public page of the call.")
    scores_visible_to_applicants: Literal["never", "after_decision"] = Field(
        default="after_decision",
        description="When applicants see their application's score and rank: 'after_decision'"
        " (once accepted, waitlisted or rejected) or 'never'. Coordinators and the assigned"
        " reviewers always see them.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": {"en": "BSR Cultural Pearls 2026", "de": "BSR Kulturperlen 2026"},
                    "description": {"en": "Learning and mentoring for smaller cities."},
                    "closes_at": "2026-10-31T23:59:59+02:00",
                    "places": 10,
                    "population_min": 5000,
                    "population_max": 250000,
                    "rubric": {
                        "scale_min": 1,
                        "scale_max": 5,
                        "criteria": [
                            {"key": "relevance", "label": {"en": "Relevance"}, "weight": 2},
                            {"key": "commitment", "label": {"en": "Commitment"}, "weight": 1},
                        ],
                    },
                    "reviews_required": 2,
                    "conflict_same_country": False,
                }
            ]
        }
    )

    @field_validator("opens_at", "closes_at")
    @classmethod
    def _representable(cls, value: datetime | None) -> datetime | None:
        # Stored in UTC: a time near year 1 or 9999 may not survive the conversion.
        if value is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError("must lie within years 1..9999 in UTC") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _short_url(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and (len(str(value)) > 2000 or "\x00" in str(value)):
            raise ValueError("URL must be shorter than 2000 characters")
        return value


class CriterionOut(_Out):
    key: str
    weight: float
    label: dict[str, str] = Field(description="What reviewers judge, per language.")


class RubricOut(_Out):
    scale_min: int
    scale_max: int
    criteria: list[CriterionOut]


class CallOut(_Out):
    call_id: uuid.UUID
    title: dict[str, str]
    description: dict[str, str]
    opens_at: datetime
    closes_at: datetime
    status: Literal["scheduled", "open", "closed"]
    places: int
    themes: list[str]
    eligible_countries: list[str]
    population_min: int
    population_max: int
    rubric: RubricOut
    reviews_required: int
    conflict_same_country: bool
    public_url: str | None
    closed_at: datetime | None
    closed_early: bool
    scores_visible_to_applicants: Literal["never", "after_decision"]


# -- applications -----------------------------------------------------------------


class ContactIn(_In):
    name: SingleLine = Field(description="Full name.")
    email: EmailStr = Field(description="E-mail address.")
    language: LanguageCode = Field(description="Preferred language (ISO 639-1).")
    role: Literal["primary", "backup"] = Field(description="Exactly one 'primary'.")


Contacts = Annotated[list[ContactIn], Field(min_length=1, max_length=6)]
Themes = Annotated[list[ThemeSlug], Field(min_length=1, max_length=30)]
Languages = Annotated[list[LanguageCode], Field(min_length=1, max_length=13)]


def _contacts_rule(contacts: list[ContactIn] | None) -> list[ContactIn] | None:
    if contacts is None:
        return None
    if sum(c.role == "primary" for c in contacts) != 1:
        raise ValueError("exactly one contact must have role 'primary'")
    if len({c.email.lower() for c in contacts}) != len(contacts):
        raise ValueError("contact e-mail addresses must be unique")
    return contacts


class _ApplicationFields(_In):
    @field_validator("contacts", check_fields=False)
    @classmethod
    def _contacts(cls, value: list[ContactIn] | None) -> list[ContactIn] | None:
        return _contacts_rule(value)

    @field_validator("themes", "languages", check_fields=False)
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        return _unique(value) if value is not None else None


class ApplicationIn(_ApplicationFields):
    """A city's or region's application to a call."""

    city_name: PlaceName = Field(
        description="Name of the city or region, e.g. 'Kuldīga'; kept as written, compared"
        " by its identity key (case, invisible characters and look-alike letters ignored)."
    )
    place_kind: PlaceKind = Field(description="'city' (municipality) or 'region'.")
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. 'LV'.")
    population: int = Field(ge=1, le=100_000_000, description="Population of the place.")
    organisation_name: SingleLine = Field(description="Applying organisation.")
    organisation_type: OrganisationType
    contacts: Contacts = Field(description="One primary contact and any backups.")
    themes: Themes = Field(description="Themes of interest, from the call's list.")
    languages: Languages = Field(description="Working languages of the team.")
    motivation: FreeText = Field(description="Why the place applies (max 4000 characters).")
    challenges: FreeText = Field(description="Challenges it faces (max 4000 characters).")
    commitments: FreeText = Field(description="What the place commits (max 4000 characters).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "city_name": "Kuldīga",
                    "place_kind": "city",
                    "country": "LV",
                    "population": 10_800,
                    "organisation_name": "Kuldīga Municipality",
                    "organisation_type": "municipality",
                    "contacts": [
                        {
                            "name": "Inese Bērziņa",
                            "email": "inese@kuldiga.example",
                            "language": "lv",
                            "role": "primary",
                        }
                    ],
                    "themes": ["culture_creative_industries"],
                    "languages": ["lv", "en"],
                    "motivation": "Our old town lives from culture.",
                    "challenges": "Young people leave.",
                    "commitments": "A culture officer half time.",
                }
            ]
        }
    )


class ApplicationPatch(_ApplicationFields):
    """Fields to change while the call is open; the city and country stay."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # ``None`` only marks "omitted"; the schema does not offer null as a value.
    place_kind: PlaceKind | SkipJsonSchema[None] = None
    population: Annotated[int, Field(ge=1, le=100_000_000)] | SkipJsonSchema[None] = None
    organisation_name: SingleLine | SkipJsonSchema[None] = None
    organisation_type: OrganisationType | SkipJsonSchema[None] = None
    contacts: Contacts | SkipJsonSchema[None] = None
    themes: Themes | SkipJsonSchema[None] = None
    languages: Languages | SkipJsonSchema[None] = None
    motivation: FreeText | SkipJsonSchema[None] = None
    challenges: FreeText | SkipJsonSchema[None] = None
    commitments: FreeText | SkipJsonSchema[None] = None

    # Omitted means "keep"; an explicit null would be silently ignored, so it is refused.
    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit a field to keep it; null is not a value")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> ApplicationPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class Receipt(BaseModel):
    application_id: uuid.UUID = Field(description="Id of the application.")
    applicant_token: str = Field(
        description="Secret for reading, updating and withdrawing; shown only here."
    )
    status: Literal["submitted"] = "submitted"


class WithdrawIn(_In):
    reason: FreeText | None = Field(default=None, description="Why, if the applicant says.")


class ContactOut(_Out):
    name: str
    email: str
    language: str
    role: str


Status = Literal["submitted", "accepted", "rejected", "waitlisted", "withdrawn"]


class ApplicationOut(_Out):
    application_id: uuid.UUID
    call_id: uuid.UUID
    status: Status
    city_name: str
    place_kind: str
    country: str
    population: int
    organisation_name: str
    organisation_type: str
    contacts: list[ContactOut]
    themes: list[str]
    languages: list[str]
    motivation: str
    challenges: str
    commitments: str
    submitted_at: datetime
    updated_at: datetime
    score: float | None
    review_count: int
    rank: int | None = None
    scores_withheld: bool = Field(
        default=False,
        description="True when score and rank are withheld from the applicant (null above"
        " although there may be reviews): the call shows them only after a decision, or never.",
    )
    decided_at: datetime | None
    reason_code: str | None
    decision_reason: str | None
    from_waitlist: bool
    withdrawn_reason: str | None


class ApplicationPage(BaseModel):
    items: list[ApplicationOut]
    total: int = Field(description="How many match the filters in all.")
    limit: int
    offset: int


# -- review and decisions ----------------------------------------------------------


class ReviewerIn(_In):
    reviewer_id: ReviewerId = Field(description="Stable id of the reviewer.")
    name: SingleLine
    city_name: PlaceName = Field(description="Home city: reviewers never review it.")
    country: CountryCode


class ReviewerOut(_Out):
    reviewer_id: str
    name: str
    city_name: str
    country: str


class ReviewerRegistered(ReviewerOut):
    token: str = Field(description="The reviewer's bearer token; shown only here.")


class AssignIn(_In):
    reviewer_id: ReviewerId


class AssignmentOut(BaseModel):
    application_id: uuid.UUID
    reviewer_id: str
    assigned: bool = True


class RefusedOut(BaseModel):
    application_id: uuid.UUID
    reviewer_id: str
    reason: Literal["same_city", "same_country"]


class SpreadOut(BaseModel):
    assigned: list[AssignmentOut]
    refused: list[RefusedOut] = Field(description="Conflicts of interest skipped, with reason.")
    short: dict[str, int] = Field(
        description="Applications left with too few eligible reviewers: id -> missing count."
    )


class MyAssignment(BaseModel):
    application_id: uuid.UUID
    call_id: uuid.UUID
    city_name: str
    country: str
    assigned_at: datetime
    reviewed: bool


class ReviewIn(_In):
    scores: dict[
        Annotated[str, StringConstraints(max_length=64)], Annotated[int, Field(ge=-1000, le=1000)]
    ] = Field(
        max_length=50, description="Score per rubric criterion key; every criterion, nothing else."
    )
    comment: FreeText = Field(description="The reviewer's comment.")


class ReviewOut(BaseModel):
    application_id: uuid.UUID
    reviewer_id: str
    scores: dict[str, int]
    comment: str
    score: float = Field(description="This review's weighted score, 0-100.")
    reviewed_at: datetime


class ReviewRecorded(BaseModel):
    application_id: uuid.UUID
    application_score: float = Field(description="Mean of all reviews so far, 0-100.")


class DecisionIn(_In):
    decision: Decision
    reason_code: ReasonCode | None = Field(
        default=None, description="Only with a rejection (else 422); defaults to 'not_selected'."
    )
    reason: FreeText | None = Field(default=None, description="Required when rejecting.")


class RankingEntry(BaseModel):
    rank: int
    application_id: uuid.UUID
    city_name: str
    country: str
    status: Status
    score: float
    review_count: int


class AuditOut(BaseModel):
    entry_id: int
    call_id: uuid.UUID
    application_id: uuid.UUID | None
    actor: str = Field(description="'coordinator:<id>', 'reviewer:<id>', 'applicant' or 'system'.")
    action: str
    details: dict[str, Any]
    at: datetime


# -- erasure ------------------------------------------------------------------------


class ErasureIn(_In):
    """Exactly one of ``email`` (a person) and ``application_id`` (a closed application)."""

    email: EmailStr | None = Field(
        default=None,
        description="Erase this person everywhere: every application's contact with this"
        " address, and (through pearls.person.erased) mentors, jurors, the contact directory"
        " and the e-mail log of the other services.",
    )
    application_id: uuid.UUID | None = Field(
        default=None,
        description="Erase the contact data of this application; only when it is withdrawn"
        " or rejected (409 otherwise).",
    )

    @model_validator(mode="after")
    def _one_of(self) -> ErasureIn:
        if (self.email is None) == (self.application_id is None):
            raise ValueError("give exactly one of email and application_id")
        return self


class ErasureOut(_Out):
    erasure_id: uuid.UUID = Field(description="Id of the erasure; the event's key.")
    scope: Literal["person", "application"]
    requested_at: datetime
    applications: int = Field(
        description="How many applications' contacts this service pseudonymised."
    )
