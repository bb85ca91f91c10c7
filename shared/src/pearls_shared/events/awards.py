"""Events of the awards service: the BSR Cultural Pearls Award rounds.

Topic ``pearls.awards.v1``. Round events are keyed by ``round_id``; a
participant's nomination and award by ``participant_id``. ``granted`` carries
everything the public showcase shows, so partner websites need nothing else.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime, Field

from pearls_shared import topics
from pearls_shared.events.base import EventData
from pearls_shared.events.common import (
    Contacts,
    CountryCode,
    LocalizedText,
    Name,
    PersonRef,
    Slug,
    Text,
    Themes,
    Value,
)

_ROUND_ID = "Id of the award round."
_PARTICIPANT_ID = "Id of the participant (= its application id in pearls.applications.v1)."
_CITY = "Name of the participant city or region."
_COUNTRY = "Country of the participant, ISO 3166-1 alpha-2."


class _AwardsEvent(EventData):
    topic: ClassVar[str] = topics.AWARDS
    producer: ClassVar[str] = "awards"


class _RoundEvent(_AwardsEvent):
    key_field: ClassVar[str] = "round_id"


class _ParticipantEvent(_AwardsEvent):
    key_field: ClassVar[str] = "participant_id"


class Criterion(Value):
    """One scoring criterion of a round."""

    criterion_id: Slug = Field(description="Stable slug of the criterion.")
    name: LocalizedText = Field(description="Name of the criterion per language; 'en' required.")
    weight: float = Field(gt=0, description="Relative weight; scores are weighted by weight/sum.")


class Eligibility(Value):
    """Which participants may be nominated in a round."""

    plan_approved_required: bool = Field(description="The action plan must have been approved.")
    min_milestone_share: float = Field(
        ge=0, le=1, description="Share of approved milestones reached (0-1) needed at nomination."
    )
    call_ids: tuple[uuid.UUID, ...] = Field(
        default=(), description="Calls whose participants are eligible; empty means all."
    )


class AwardRoundOpened(_RoundEvent):
    """A coordinator opened an award round: criteria, eligibility, jury and awards to give."""

    event_type: ClassVar[str] = "pearls.award.round_opened"

    round_id: uuid.UUID = Field(description=_ROUND_ID)
    title: LocalizedText = Field(description="Title of the round per language; 'en' required.")
    opened_at: AwareDatetime = Field(description="When the round opened.")
    closes_at: AwareDatetime = Field(description="When jury scoring ends.")
    criteria: tuple[Criterion, ...] = Field(min_length=1, description="Scoring criteria.")
    eligibility: Eligibility = Field(description="Who may be nominated.")
    awards_count: int = Field(ge=1, description="Awards given under the one-per-country rule.")
    additional_award_allowed: bool = Field(
        description="Whether the jury may give one additional award exempt from the country rule."
    )
    tie_break_rule: Text = Field(description="The recorded, deterministic rule that breaks ties.")
    per_country: int = Field(
        default=1, ge=1, description="Regular awards one country may receive (the quota)."
    )
    tight_margin: float | None = Field(
        default=None,
        ge=0,
        description="On the 0-100 scale: the next score within this of the last regular"
        " winner's may receive the additional award. Null from producers that predate it.",
    )
    normalise_scores: bool = Field(
        default=False, description="Whether each juror's scores are z-scored before averaging."
    )
    jurors: tuple[PersonRef, ...] = Field(
        min_length=1, description="The jury, with how to reach each juror."
    )


class AwardNominated(_ParticipantEvent):
    """A participant was nominated in an award round and will be scored by the jury."""

    event_type: ClassVar[str] = "pearls.award.nominated"

    round_id: uuid.UUID = Field(description=_ROUND_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    nominated_at: AwareDatetime = Field(description="When the nomination was recorded.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description="The participant's contact persons.")
    themes: Themes = Field(description="Themes the participant worked on.")


class AwardGranted(_ParticipantEvent):
    """A participant received the BSR Cultural Pearls Award; the showcase publishes it."""

    event_type: ClassVar[str] = "pearls.award.granted"

    round_id: uuid.UUID = Field(description=_ROUND_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    granted_at: AwareDatetime = Field(description="When the award was decided.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description="The participant's contact persons.")
    rank: int = Field(ge=1, description="Position among the round's winners, 1 = highest score.")
    score: float = Field(ge=0, le=100, description="Weighted jury score, normalised to 0-100.")
    additional_award: bool = Field(
        description="True for the one additional award, to which the one-per-country rule "
        "does not apply."
    )
    citation: LocalizedText = Field(description="The jury's citation per language; 'en' required.")
    themes: Themes = Field(description="Themes the participant worked on.")
    achievements: tuple[Text, ...] = Field(
        min_length=1, description="What the action plan achieved, one sentence each."
    )


class AwardRevoked(_ParticipantEvent):
    """A coordinator revoked an award; the showcase no longer shows it."""

    event_type: ClassVar[str] = "pearls.award.revoked"

    round_id: uuid.UUID = Field(description=_ROUND_ID)
    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    revoked_at: AwareDatetime = Field(description="When the award was revoked.")
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    contacts: Contacts = Field(description="The participant's contact persons.")
    reason: Text = Field(description="Why the award was revoked, as told to the participant.")


class Winner(Value):
    """One winner of a closed round."""

    participant_id: uuid.UUID = Field(description=_PARTICIPANT_ID)
    city_name: Name = Field(description=_CITY)
    country: CountryCode = Field(description=_COUNTRY)
    rank: int = Field(ge=1, description="Position among the winners, 1 = highest score.")
    score: float = Field(ge=0, le=100, description="Weighted jury score, normalised to 0-100.")
    additional_award: bool = Field(description="True for the country-rule-exempt additional award.")


class AwardRoundClosed(_RoundEvent):
    """An award round closed with its winners (each also announced by award.granted)."""

    event_type: ClassVar[str] = "pearls.award.round_closed"

    round_id: uuid.UUID = Field(description=_ROUND_ID)
    closed_at: AwareDatetime = Field(description="When the round closed.")
    nominees_count: int = Field(ge=0, description="Participants nominated in the round.")
    winners: tuple[Winner, ...] = Field(description="Winners in rank order (may be empty).")
    jurors: tuple[PersonRef, ...] = Field(
        default=(), description="The jury, so that it can be thanked and told the outcome."
    )


EVENTS: tuple[type[EventData], ...] = (
    AwardRoundOpened,
    AwardNominated,
    AwardGranted,
    AwardRevoked,
    AwardRoundClosed,
)
