"""Events of the applications service: calls, applications, reviews, decisions.

Topic ``pearls.applications.v1``; call events are keyed by ``call_id``, erasures
by ``erasure_id``, all others by ``application_id`` (which later services call the
participant id).
Decisions carry the applicant's name, country and contacts so that mentoring
and notifications can act without asking the applications service.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AnyHttpUrl, AwareDatetime, Field, StringConstraints, model_validator

from pearls_shared import topics
from pearls_shared.events.base import EventData
from pearls_shared.events.common import (
    Contacts,
    Countries,
    CountryCode,
    Languages,
    LocalizedText,
    Name,
    Text,
    Themes,
)

_APPLICATION_ID = "Id of the application; becomes the participant id once accepted."
_CALL_ID = "Id of the call the application belongs to."
_CITY = "Name of the applying city or region, as it calls itself (e.g. 'Kuldīga')."
_COUNTRY = "Country of the applicant, ISO 3166-1 alpha-2 (e.g. 'LV')."
_CONTACTS = "Contact persons to write to: exactly one primary, any number of backups."
_SCORE = "Weighted mean review score, normalised to 0-100; null when not reviewed."


class _ApplicationsEvent(EventData):
    topic: ClassVar[str] = topics.APPLICATIONS
    producer: ClassVar[str] = "applications"


class _CallEvent(_ApplicationsEvent):
    key_field: ClassVar[str] = "call_id"


class _ApplicationEvent(_ApplicationsEvent):
    key_field: ClassVar[str] = "application_id"


class CallOpened(_CallEvent):
    """A call for applications opened: cities and regions may now apply."""

    event_type: ClassVar[str] = "pearls.call.opened"

    call_id: uuid.UUID = Field(description="Id of the call.")
    title: LocalizedText = Field(description="Title of the call per language; 'en' is required.")
    opens_at: AwareDatetime = Field(description="First moment applications are accepted.")
    closes_at: AwareDatetime = Field(description="Moment after which submissions are refused.")
    places: int = Field(ge=1, description="Number of participants the programme will accept.")
    themes: Themes = Field(description="Theme slugs the call offers (defaults: DEFAULT_THEMES).")
    eligible_countries: Countries = Field(
        description="Countries (ISO 3166-1 alpha-2) whose cities and regions may apply."
    )
    population_min: int = Field(ge=0, description="Smallest eligible population (inclusive).")
    population_max: int = Field(ge=1, description="Largest eligible population (inclusive).")
    public_url: AnyHttpUrl | None = Field(
        default=None, description="Public page of the call, if there is one."
    )

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.population_max < self.population_min:
            raise ValueError("population_max must not be below population_min")
        return self


class CallClosed(_CallEvent):
    """A call closed; no more submissions. Review and selection follow."""

    event_type: ClassVar[str] = "pearls.call.closed"

    call_id: uuid.UUID = Field(description="Id of the call.")
    closed_at: AwareDatetime = Field(description="When the call closed.")
    closed_early: bool = Field(
        description="True when a coordinator closed the call before its closes_at."
    )
    applications_received: int = Field(
        ge=0, description="Applications submitted and not withdrawn at closing."
    )


class ApplicationSubmitted(_ApplicationEvent):
    """A city or region submitted its application to a call."""

    event_type: ClassVar[str] = "pearls.application.submitted"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    submitted_at: AwareDatetime = Field(description="When the application was submitted.")
    city_name: Name = Field(description=_CITY)
    place_kind: Literal["city", "region"] = Field(
        description="Whether the applicant is a city (municipality) or a region."
    )
    country: CountryCode = Field(description=_COUNTRY)
    population: int = Field(ge=1, description="Population of the city or region.")
    organisation_name: Name = Field(
        description="Applying organisation (e.g. 'Kuldīga Municipality')."
    )
    organisation_type: Literal[
        "municipality", "regional_authority", "public_institution", "ngo", "other"
    ] = Field(description="Legal kind of the applying organisation.")
    contacts: Contacts = Field(description=_CONTACTS)
    themes: Themes = Field(description="Themes (of the call's) the applicant wants to work on.")
    languages: Languages = Field(
        description="Working languages of the applicant's team, used to match a mentor."
    )
    summary: Text | None = Field(
        default=None, description="The applicant's short motivation, as submitted."
    )


class ApplicationWithdrawn(_ApplicationEvent):
    """An applicant withdrew; if it had been accepted, its place becomes free."""

    event_type: ClassVar[str] = "pearls.application.withdrawn"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    withdrawn_at: AwareDatetime = Field(description="When the withdrawal was recorded.")
    previous_status: Literal["submitted", "accepted", "waitlisted"] = Field(
        description="Status before withdrawal; 'accepted' means a participant left the programme."
    )
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    reason: Text | None = Field(default=None, description="Reason given by the applicant, if any.")


class ApplicationReviewed(_ApplicationEvent):
    """A reviewer scored an application; carries the running aggregate, not the review."""

    event_type: ClassVar[str] = "pearls.application.reviewed"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    reviewed_at: AwareDatetime = Field(description="When this review was recorded.")
    score: float = Field(
        ge=0, le=100, description="Weighted mean of all reviews so far, normalised to 0-100."
    )
    review_count: int = Field(ge=1, description="Number of reviews recorded so far.")
    reviewers_assigned: int = Field(ge=1, description="Number of reviewers assigned.")

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if self.review_count > self.reviewers_assigned:
            raise ValueError("review_count must not exceed reviewers_assigned")
        return self


class ApplicationAccepted(_ApplicationEvent):
    """An application was accepted: the applicant is now a participant."""

    event_type: ClassVar[str] = "pearls.application.accepted"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    decided_at: AwareDatetime = Field(description="When the decision was taken.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    population: int = Field(ge=1, description="Population of the city or region.")
    contacts: Contacts = Field(description=_CONTACTS)
    themes: Themes = Field(description="Themes the participant works on (for mentor matching).")
    languages: Languages = Field(description="Working languages (for mentor matching).")
    rank: int | None = Field(
        default=None, ge=1, description="Position in the call's ranking; null if not ranked."
    )
    score: float | None = Field(default=None, ge=0, le=100, description=_SCORE)
    from_waitlist: bool = Field(
        description="True when the participant moved up from the waitlist after a withdrawal."
    )
    applicant_token_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 of the applicant's bearer token (never the token itself), so"
        " that the mentoring service recognises the participant when it presents that token."
        " Null from producers that predate it.",
    )


class ApplicationRejected(_ApplicationEvent):
    """An application was rejected, with the reason the applicant is told."""

    event_type: ClassVar[str] = "pearls.application.rejected"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    decided_at: AwareDatetime = Field(description="When the decision was taken.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    reason_code: Literal["ineligible", "incomplete", "not_selected", "other"] = Field(
        description="Machine-readable reason, for reporting."
    )
    reason: Text = Field(description="The reason as written to the applicant.")
    rank: int | None = Field(
        default=None, ge=1, description="Position in the call's ranking; null if not ranked."
    )
    score: float | None = Field(default=None, ge=0, le=100, description=_SCORE)


class ApplicationWaitlisted(_ApplicationEvent):
    """An application was put on the waitlist; it moves up when a place frees."""

    event_type: ClassVar[str] = "pearls.application.waitlisted"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    decided_at: AwareDatetime = Field(description="When the decision was taken.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description=_CONTACTS)
    waitlist_position: int = Field(
        ge=1, description="Position on the waitlist, 1 = next to move up."
    )
    rank: int | None = Field(
        default=None, ge=1, description="Position in the call's ranking; null if not ranked."
    )
    score: float | None = Field(default=None, ge=0, le=100, description=_SCORE)


class ApplicationContactsChanged(_ApplicationEvent):
    """The applicant replaced its contact persons; the list is the full current one."""

    event_type: ClassVar[str] = "pearls.application.contacts_changed"

    application_id: uuid.UUID = Field(description=_APPLICATION_ID)
    call_id: uuid.UUID = Field(description=_CALL_ID)
    changed_at: AwareDatetime = Field(
        description="When the change was recorded. Every event that carries contacts tells"
        " them as of its own time (submitted_at, decided_at, withdrawn_at, changed_at): a"
        " consumer keeps the contacts of the latest one, so an older event arriving late"
        " never overwrites newer contacts."
    )
    city_name: Name = Field(description=_CITY)
    contacts: Contacts = Field(
        description="The complete current list (replaces the previous one): exactly one"
        " primary, any number of backups."
    )


EmailHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class PersonErased(_ApplicationsEvent):
    """A coordinator erased a person's (or a closed application's) contact data (GDPR art. 17).

    Carries no address: only keyed hashes (HMAC-SHA256 with the operator's shared erasure
    key, ``pearls_shared.privacy``) and, for an application's erasure, its id. Every
    subscriber pseudonymises what it holds for those addresses and keeps the hashes, so
    data arriving later for them is pseudonymised on arrival.
    """

    event_type: ClassVar[str] = "pearls.person.erased"
    key_field: ClassVar[str] = "erasure_id"

    erasure_id: uuid.UUID = Field(description="Id of the erasure (the coordinator's request).")
    requested_at: AwareDatetime = Field(description="When the coordinator asked for it.")
    scope: Literal["person", "application"] = Field(
        description="'person': every record of the addresses, wherever they appear;"
        " 'application': the contact data of one withdrawn or rejected application."
    )
    email_hashes: tuple[EmailHash, ...] = Field(
        description="Hex HMAC-SHA256 of each erased address (trimmed, lower case), keyed with"
        " the erasure key the operator gives every subscriber; empty when none is known."
    )
    application_id: uuid.UUID | None = Field(
        default=None,
        description="The application whose contact data is erased (scope"
        " 'application'); null for a person.",
    )

    @model_validator(mode="after")
    def _scope(self) -> Self:
        if self.scope == "application" and self.application_id is None:
            raise ValueError("an application's erasure names its application_id")
        if self.scope == "person" and not self.email_hashes:
            raise ValueError("a person's erasure carries the hash of its address")
        return self


EVENTS: tuple[type[EventData], ...] = (
    CallOpened,
    CallClosed,
    ApplicationSubmitted,
    ApplicationWithdrawn,
    ApplicationReviewed,
    ApplicationAccepted,
    ApplicationRejected,
    ApplicationWaitlisted,
    ApplicationContactsChanged,
    PersonErased,
)
