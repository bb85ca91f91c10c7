"""Action plans: drafts, revisions, review, progress and overdue milestones.

A plan is written by the participant, reviewed by its mentor and, once
approved, measured by its milestones. Every submission is a new revision;
earlier revisions stay as they were. Milestone and measure ids are stable
across revisions: a resubmission names the ones it keeps and new ones get ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from pearls_shared.errors import Conflict, Invalid

PlanStatus = Literal["submitted", "changes_requested", "approved", "completed"]
ReviewDecision = Literal["approve", "request_changes"]

MAX_ACHIEVEMENT_CHARS = 300


@dataclass(frozen=True, slots=True)
class MilestoneDraft:
    milestone_id: uuid.UUID | None
    title: str
    due_date: date


@dataclass(frozen=True, slots=True)
class MeasureDraft:
    measure_id: uuid.UUID | None
    title: str
    description: str
    theme: str
    responsible: str
    starts_on: date
    ends_on: date
    share_consent: bool


@dataclass(frozen=True, slots=True)
class PlanDraft:
    title: str
    language: str
    starts_on: date
    ends_on: date
    goals: tuple[str, ...]
    measures: tuple[MeasureDraft, ...]
    milestones: tuple[MilestoneDraft, ...]


def check_draft(
    draft: PlanDraft,
    *,
    participant_themes: Iterable[str],
    known_milestones: Iterable[uuid.UUID] = (),
    known_measures: Iterable[uuid.UUID] = (),
) -> PlanDraft:
    """Refuse a draft that breaks a rule (naming the field); give new items their ids.

    Milestones come back in due-date order (the order events and reports use).
    """
    if draft.ends_on < draft.starts_on:
        raise Invalid(("body", "ends_on"), "after_start", "the plan must end after it starts")
    themes = set(participant_themes)
    kept_milestones, kept_measures = set(known_milestones), set(known_measures)
    seen: set[uuid.UUID] = set()
    milestones: list[MilestoneDraft] = []
    for i, m in enumerate(draft.milestones):
        at = ("body", "milestones", i)
        if m.due_date < draft.starts_on:
            raise Invalid(
                (*at, "due_date"),
                "due_after_plan_start",
                f"milestone {m.title!r} is due on {m.due_date}, before the plan starts"
                f" on {draft.starts_on}",
            )
        if m.due_date > draft.ends_on:
            raise Invalid(
                (*at, "due_date"),
                "due_before_plan_end",
                f"milestone {m.title!r} is due on {m.due_date}, after the plan ends"
                f" on {draft.ends_on}",
            )
        if m.milestone_id is not None:
            if m.milestone_id not in kept_milestones:
                raise Invalid(
                    (*at, "milestone_id"),
                    "known_milestone",
                    "no earlier revision of this plan has that milestone; omit the id for a"
                    " new one",
                )
            if m.milestone_id in seen:
                raise Invalid((*at, "milestone_id"), "unique", "a milestone appears twice")
            seen.add(m.milestone_id)
        milestones.append(m if m.milestone_id else replace(m, milestone_id=uuid.uuid4()))
    measures: list[MeasureDraft] = []
    seen_measures: set[uuid.UUID] = set()
    for i, measure in enumerate(draft.measures):
        at = ("body", "measures", i)
        if measure.theme not in themes:
            raise Invalid(
                (*at, "theme"),
                "participant_theme",
                f"theme {measure.theme!r} is not one of the participant's themes"
                f" ({', '.join(sorted(themes))})",
            )
        if measure.ends_on < measure.starts_on:
            raise Invalid((*at, "ends_on"), "after_start", "a measure must end after it starts")
        if measure.starts_on < draft.starts_on or measure.ends_on > draft.ends_on:
            raise Invalid(
                (*at, "starts_on" if measure.starts_on < draft.starts_on else "ends_on"),
                "within_plan",
                "a measure must lie within the plan's timeline",
            )
        if measure.measure_id is not None:
            if measure.measure_id not in kept_measures:
                raise Invalid(
                    (*at, "measure_id"),
                    "known_measure",
                    "no earlier revision of this plan has that measure; omit the id for a new one",
                )
            if measure.measure_id in seen_measures:
                raise Invalid((*at, "measure_id"), "unique", "a measure appears twice")
            seen_measures.add(measure.measure_id)
        measures.append(
            measure if measure.measure_id else replace(measure, measure_id=uuid.uuid4())
        )
    milestones.sort(key=lambda m: (m.due_date, m.title))
    return replace(draft, milestones=tuple(milestones), measures=tuple(measures))


def may_submit(status: PlanStatus | None) -> None:
    """A plan is (re)submitted until the mentor approves it; then it is implemented."""
    if status in ("approved", "completed"):
        raise Conflict(
            ("path", "participant_id"),
            "plan_approved",
            "the plan is approved; report progress on its milestones instead",
        )


def may_review(status: PlanStatus, current_revision: int, revision: int) -> None:
    if status != "submitted":
        raise Conflict(
            ("path", "participant_id"),
            "awaiting_review",
            f"the plan is {status.replace('_', ' ')}, not waiting for a review",
        )
    if revision != current_revision:
        raise Conflict(
            ("body", "revision"),
            "current_revision",
            f"revision {revision} is not the current one ({current_revision})",
        )


@dataclass(frozen=True, slots=True)
class MilestoneState:
    milestone_id: uuid.UUID
    title: str
    due_date: date
    reached_at: datetime | None
    evidence_summary: str | None


def may_report(status: PlanStatus | None) -> None:
    if status not in ("approved", "completed"):
        raise Conflict(
            ("path", "participant_id"),
            "plan_approved_first",
            "progress is reported on an approved plan"
            + ("" if status is None else f"; this one is {status.replace('_', ' ')}"),
        )


def may_reach(milestone: MilestoneState) -> None:
    if milestone.reached_at is not None:
        raise Conflict(
            ("path", "milestone_id"),
            "already_reached",
            f"milestone {milestone.title!r} was reported reached on {milestone.reached_at.date()}",
        )


def days_overdue(due_date: date, today: date) -> int:
    """Whole days past the due date (a milestone due today is not overdue)."""
    return (today - due_date).days


def achievements(milestones: Sequence[MilestoneState]) -> tuple[str, ...]:
    """One sentence per reached milestone, for the award showcase."""
    found = []
    for m in milestones:
        if m.reached_at is None:
            continue
        evidence = " ".join((m.evidence_summary or "").split())
        text = f"{m.title}: {evidence}" if evidence else m.title
        if len(text) > MAX_ACHIEVEMENT_CHARS:
            text = text[: MAX_ACHIEVEMENT_CHARS - 1].rstrip() + "…"
        found.append(text)
    return tuple(found)
