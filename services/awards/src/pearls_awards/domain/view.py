"""The awards service's own view of a participant, built from events only.

Every change is a commutative merge (sets grow, stages only rise, a withdrawal
is final, the latest acceptance wins), so the view rebuilt from the topics in
whatever order equals the one built live, and a redelivered event changes
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pearls_shared.events import applications as app_events
from pearls_shared.events import mentoring as men_events
from pearls_shared.names import identity_key

NONE, SUBMITTED, APPROVED, COMPLETED = 0, 1, 2, 3
STAGES = {NONE: None, SUBMITTED: "submitted", APPROVED: "approved", COMPLETED: "completed"}


@dataclass
class ParticipantView:
    participant_id: uuid.UUID
    call_id: uuid.UUID | None = None
    city_name: str | None = None
    country: str | None = None
    contacts: list[dict[str, Any]] | None = None
    contacts_as_of: datetime | None = None
    themes: tuple[str, ...] = ()
    accepted_at: datetime | None = None
    withdrawn_at: datetime | None = None
    plan_stage: int = NONE
    approved_revision: int | None = None
    approved_milestones: dict[str, dict[str, str]] = field(default_factory=dict)  # title, due
    reached: dict[str, str] = field(default_factory=dict)
    overdue: tuple[str, ...] = ()
    achievements: tuple[str, ...] = ()
    mentors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def city_key(self) -> str | None:
        return identity_key(self.city_name) if self.city_name else None

    @property
    def known(self) -> bool:
        """Accepted and described (an early withdrawal or plan event leaves a stub)."""
        return self.accepted_at is not None

    @property
    def active(self) -> bool:
        return self.known and self.withdrawn_at is None

    @property
    def plan_status(self) -> str | None:
        return STAGES[self.plan_stage]

    @property
    def milestones_total(self) -> int:
        return len(self.approved_milestones)

    @property
    def milestones_reached(self) -> int:
        return len(set(self.reached) & set(self.approved_milestones))

    @property
    def milestone_share(self) -> float:
        total = self.milestones_total
        return self.milestones_reached / total if total else 0.0

    @property
    def current_mentor_id(self) -> str | None:
        current = [
            (m["assigned_at"], mid)
            for mid, m in self.mentors.items()
            if m.get("assigned_at") and (m.get("unassigned_at") or "") < m["assigned_at"]
        ]
        return max(current)[1] if current else None

    def mentor_emails(self) -> set[str]:
        """Everyone who ever mentored the participant (a conflict for a juror)."""
        return {str(m["email"]).casefold() for m in self.mentors.values() if m.get("email")}

    def achievements_for_showcase(self) -> tuple[str, ...]:
        """What the plan achieved: the completed plan's own words, else reached milestones."""
        if self.achievements:
            return self.achievements

        # In the plan's order: by due date (a milestone not in the approved plan last).
        def due(mid: str) -> tuple[str, str]:
            return (self.approved_milestones.get(mid, {}).get("due_date", "9999"), mid)

        reached = [self.reached[mid] for mid in sorted(self.reached, key=due) if self.reached[mid]]
        return tuple(reached) or ("An action plan for culture and social resilience",)


def _max_time(a: str | None, b: str | None) -> str | None:
    return max(x for x in (a, b) if x) if (a or b) else None


def apply(view: ParticipantView, event: Any) -> ParticipantView:
    """Merge one event into the view (in place) and return it."""
    if isinstance(event, app_events.ApplicationAccepted):
        if view.accepted_at is None or event.decided_at >= view.accepted_at:
            view.call_id = event.call_id
            view.city_name = event.city_name
            view.country = event.country
            view.themes = tuple(event.themes)
            view.accepted_at = event.decided_at
        _contacts(view, event.contacts, event.decided_at)
    elif isinstance(event, app_events.ApplicationContactsChanged):
        _contacts(view, event.contacts, event.changed_at)
    elif isinstance(event, app_events.ApplicationWithdrawn):
        if event.previous_status == "accepted":
            view.withdrawn_at = min(filter(None, (view.withdrawn_at, event.withdrawn_at)))
    elif isinstance(event, men_events.MentorAssigned):
        _mentor(view, event.mentor, assigned_at=event.assigned_at.isoformat())
    elif isinstance(event, men_events.MentorUnassigned):
        _mentor(view, event.mentor, unassigned_at=event.unassigned_at.isoformat())
    elif isinstance(event, men_events.PlanSubmitted):
        view.plan_stage = max(view.plan_stage, SUBMITTED)
    elif isinstance(event, men_events.PlanApproved):
        view.plan_stage = max(view.plan_stage, APPROVED)
        if view.approved_revision is None or event.revision >= view.approved_revision:
            view.approved_revision = event.revision
            view.approved_milestones = {
                str(m.milestone_id): {"title": m.title, "due_date": m.due_date.isoformat()}
                for m in event.milestones
            }
    elif isinstance(event, men_events.MilestoneReached):
        evidence = " ".join(event.evidence_summary.split())
        view.reached = {
            **view.reached,
            str(event.milestone.milestone_id): f"{event.milestone.title}: {evidence}"[:4000],
        }
    elif isinstance(event, men_events.MilestoneOverdue):
        view.overdue = tuple(sorted({*view.overdue, str(event.milestone.milestone_id)}))
    elif isinstance(event, men_events.PlanCompleted):
        view.plan_stage = COMPLETED
        view.achievements = tuple(event.achievements)
    return view


def _contacts(view: ParticipantView, contacts: Any, as_of: datetime) -> None:
    """The contact list of the latest event that carries one (ties: the later read)."""
    if view.contacts_as_of is None or as_of >= view.contacts_as_of:
        view.contacts = [c.model_dump(mode="json") for c in contacts]
        view.contacts_as_of = as_of


def _mentor(
    view: ParticipantView,
    ref: Any,
    *,
    assigned_at: str | None = None,
    unassigned_at: str | None = None,
) -> None:
    mid = str(ref.mentor_id)
    known = dict(view.mentors.get(mid, {}))
    known.update(email=str(ref.email), name=ref.name)
    known["assigned_at"] = _max_time(known.get("assigned_at"), assigned_at)
    known["unassigned_at"] = _max_time(known.get("unassigned_at"), unassigned_at)
    view.mentors = {**view.mentors, mid: known}


# Event types the view is built from (the rest of the two topics does not matter here).
VIEW_EVENTS: tuple[str, ...] = (
    "pearls.application.accepted",
    "pearls.application.contacts_changed",
    "pearls.application.withdrawn",
    "pearls.mentor.assigned",
    "pearls.mentor.unassigned",
    "pearls.plan.submitted",
    "pearls.plan.approved",
    "pearls.plan.milestone_reached",
    "pearls.plan.milestone_overdue",
    "pearls.plan.completed",
)
