"""Participants, mentors and their rules: pure data and decisions, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pearls_mentoring.domain import matching
from pearls_shared.events.common import ContactPerson, MentorRef
from pearls_shared.names import identity_key

SYSTEM = "system"

ParticipantStatus = Literal["active", "withdrawn"]
MentorKind = Literal["national_expert", "pearl_city"]
MentorStatus = Literal["active", "paused"]


@dataclass
class Participant:
    """An accepted applicant, as the applications service's events describe it."""

    id: uuid.UUID
    call_id: uuid.UUID | None
    status: ParticipantStatus
    city_name: str
    country: str
    contacts: tuple[ContactPerson, ...]
    themes: tuple[str, ...]
    languages: tuple[str, ...]
    token_sha256: bytes | None = None
    accepted_at: datetime | None = None
    withdrawn_at: datetime | None = None
    unmatched_reasons: tuple[str, ...] | None = None
    unmatched_summary: str | None = None

    @property
    def city_key(self) -> str:
        return identity_key(self.city_name)

    def for_matching(self) -> matching.Participant:
        return matching.Participant(
            id=self.id,
            country=self.country,
            city_key=self.city_key,
            languages=frozenset(self.languages),
            themes=frozenset(self.themes),
        )


@dataclass
class Mentor:
    """A national expert or an experienced pearl city, registered by a coordinator."""

    id: uuid.UUID
    kind: MentorKind
    name: str
    email: str
    language: str
    languages: tuple[str, ...]
    country: str
    city_name: str | None
    organisation: str | None
    capacity: int
    themes: tuple[str, ...]
    status: MentorStatus = "active"
    registered_at: datetime | None = None
    load: int = field(default=0, compare=False)  # current participants, when loaded with it

    @property
    def city_key(self) -> str | None:
        return identity_key(self.city_name) if self.city_name else None

    def ref(self) -> MentorRef:
        return MentorRef.model_validate(
            {
                "mentor_id": self.id,
                "name": self.name,
                "email": self.email,
                "language": self.language,
            }
        )

    def for_matching(self, extra_load: int = 0) -> matching.Mentor:
        return matching.Mentor(
            id=self.id,
            country=self.country,
            city_key=self.city_key,
            languages=frozenset(self.languages),
            themes=frozenset(self.themes),
            capacity=self.capacity,
            load=self.load + extra_load,
        )


@dataclass(frozen=True, slots=True)
class Assignment:
    participant_id: uuid.UUID
    mentor_id: uuid.UUID
    assigned_at: datetime
    assigned_by: str
    explanation: dict[str, object]
    score: float | None
    overridden: bool
    override_reason: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    participant_id: uuid.UUID | None = None
    mentor_id: uuid.UUID | None = None
    details: dict[str, object] = field(default_factory=dict)
