"""Award rounds: who is eligible, which jurors are in conflict, what a score may be."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pearls_awards.domain.ranking import Criterion
from pearls_awards.domain.view import ParticipantView
from pearls_shared.errors import Conflict, Invalid
from pearls_shared.names import identity_key

RoundStatus = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class Eligibility:
    plan_approved_required: bool = True
    min_milestone_share: float = 0.5
    call_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class Juror:
    juror_id: uuid.UUID
    name: str
    email: str
    language: str
    city_name: str | None
    country: str | None
    mentor_id: uuid.UUID | None = None

    @property
    def city_key(self) -> str | None:
        return identity_key(self.city_name) if self.city_name else None


@dataclass
class Round:
    round_id: uuid.UUID
    title: dict[str, str]
    opened_at: datetime
    closes_at: datetime
    criteria: tuple[Criterion, ...]
    criterion_names: dict[str, dict[str, str]]
    eligibility: Eligibility
    awards_count: int = 3
    per_country: int = 1
    additional_award_allowed: bool = True
    tight_margin: float = 2.0
    normalise: bool = False
    status: RoundStatus = "open"
    closed_at: datetime | None = None
    jurors: tuple[Juror, ...] = field(default_factory=tuple)


def ineligibility(view: ParticipantView | None, rules: Eligibility) -> tuple[str, str] | None:
    """The first eligibility rule a participant fails, as (rule, explanation); None if eligible."""
    if view is None or not view.known:
        return "participant", "no such participant (not accepted into the programme)"
    if view.withdrawn_at is not None:
        return "participant_active", "the participant withdrew from the programme"
    if rules.call_ids and view.call_id not in rules.call_ids:
        return "call", "the participant's call is not part of this round"
    if rules.plan_approved_required and view.plan_stage < 2:
        return "plan_approved", "the action plan has not been approved"
    if view.milestone_share < rules.min_milestone_share:
        return (
            "milestone_share",
            f"{view.milestones_reached} of {view.milestones_total} milestones reached"
            f" ({view.milestone_share:.0%}); the round asks for"
            f" {rules.min_milestone_share:.0%}",
        )
    return None


def conflicts(juror: Juror, view: ParticipantView) -> list[tuple[str, str]]:
    """Conflicts of interest, derived from what the events say (never declared)."""
    found: list[tuple[str, str]] = []
    mentored = (juror.mentor_id is not None and str(juror.mentor_id) in view.mentors) or (
        juror.email.casefold() in view.mentor_emails()
    )
    if mentored:
        found.append(("mentored", f"{juror.name} mentored {view.city_name}"))
    # Same city name in the same country; a juror whose country is not given is matched
    # by the city alone (a wrong exclusion costs one score, a missed one a fair award).
    if (
        juror.city_key is not None
        and juror.city_key == view.city_key
        and (juror.country is None or juror.country == view.country)
    ):
        found.append(("same_city", f"{juror.name} comes from {view.city_name}"))
    return found


def check_scores(values: Mapping[str, int], criteria: Sequence[Criterion]) -> dict[str, int]:
    """Every criterion scored once, within its scale; the field at fault is named."""
    known = {c.criterion_id: c for c in criteria}
    for key in values:
        if key not in known:
            raise Invalid(("body", "scores", key), "known_criterion", f"no criterion {key!r}")
    for c in criteria:
        if c.criterion_id not in values:
            raise Invalid(
                ("body", "scores", c.criterion_id), "every_criterion", "score every criterion"
            )
        value = values[c.criterion_id]
        if not c.scale_min <= value <= c.scale_max:
            raise Invalid(
                ("body", "scores", c.criterion_id),
                "scale",
                f"{value} is outside the scale {c.scale_min}-{c.scale_max}",
            )
    return dict(values)


def may_score(round_: Round, now: datetime) -> None:
    if round_.status == "closed":
        raise Conflict(("path", "round_id"), "round_open", "the round is closed")
    if now > round_.closes_at:
        raise Conflict(
            ("path", "round_id"), "scoring_deadline", f"scoring ended at {round_.closes_at}"
        )


def may_close(round_: Round) -> None:
    if round_.status == "closed":
        raise Conflict(("path", "round_id"), "round_open", "the round is closed already")
