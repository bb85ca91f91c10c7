"""The participants' view: every merge commutes, so any order of events gives one view."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pearls_awards.domain.view import ParticipantView, apply
from pearls_shared.events import applications as apps
from pearls_shared.events import mentoring as men

PID = uuid.uuid4()
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CONTACTS = [
    {"name": "Inese", "email": "inese@kuldiga.example", "language": "lv", "role": "primary"}
]
MILESTONES = [
    {"milestone_id": str(uuid.uuid4()), "title": title, "due_date": str(date(2026, m, 1))}
    for title, m in (("Festival held", 8), ("Board formed", 4), ("Survey done", 6))
]
MENTOR = {
    "mentor_id": str(uuid.uuid4()),
    "name": "Kadri",
    "email": "kadri@x.example",
    "language": "et",
}


def _story() -> list[Any]:
    base = {"participant_id": PID, "city_name": "Kuldīga"}
    return [
        apps.ApplicationAccepted.model_validate(
            {
                "application_id": PID,
                "call_id": uuid.uuid4(),
                "decided_at": T0,
                "city_name": "Kuldīga",
                "country": "LV",
                "population": 10_000,
                "contacts": CONTACTS,
                "themes": ["culture_creative_industries"],
                "languages": ["lv"],
                "from_waitlist": False,
            }
        ),
        men.MentorAssigned.model_validate(
            {
                **base,
                "mentor": MENTOR,
                "assigned_at": T0 + timedelta(days=1),
                "country": "LV",
                "contacts": CONTACTS,
                "explanation": {
                    "summary": "x",
                    "shared_languages": ["lv"],
                    "shared_themes": [],
                    "cross_border": False,
                },
                "overridden_by_coordinator": False,
            }
        ),
        men.PlanApproved.model_validate(
            {
                **base,
                "plan_id": uuid.uuid4(),
                "revision": 2,
                "approved_at": T0 + timedelta(days=9),
                "mentor": MENTOR,
                "country": "LV",
                "contacts": CONTACTS,
                "milestones": MILESTONES,
            }
        ),
        *(
            men.MilestoneReached.model_validate(
                {
                    **base,
                    "plan_id": uuid.uuid4(),
                    "milestone": m,
                    "reached_at": T0 + timedelta(days=20 + i),
                    "evidence_summary": f"done {i}",
                    "milestones_reached": i + 1,
                    "milestones_total": 3,
                }
            )
            for i, m in enumerate(MILESTONES[:2])
        ),
    ]


@settings(max_examples=60)
@given(st.permutations(range(5)), st.lists(st.integers(0, 4), max_size=4))
def test_any_order_and_any_repeats_give_the_same_view(order: list[int], repeats: list[int]) -> None:
    story = _story()
    in_order = ParticipantView(PID)
    for event in story:
        apply(in_order, event)
    shuffled = ParticipantView(PID)
    for i in [*order, *repeats]:
        apply(shuffled, story[i])
    assert dataclasses.asdict(shuffled) == dataclasses.asdict(in_order)
    assert in_order.milestones_reached == 2 and in_order.milestones_total == 3
    assert in_order.current_mentor_id == MENTOR["mentor_id"]


def test_achievements_come_in_the_plans_order_and_a_withdrawal_is_final() -> None:
    view = ParticipantView(PID)
    for event in _story():
        apply(view, event)
    # Reached: "Festival held" (due in August) and "Board formed" (April): April first.
    assert view.achievements_for_showcase() == ("Board formed: done 1", "Festival held: done 0")
    story = _story()
    withdrawn = apps.ApplicationWithdrawn.model_validate(
        {
            "application_id": PID,
            "call_id": uuid.uuid4(),
            "withdrawn_at": T0 + timedelta(days=30),
            "previous_status": "accepted",
            "city_name": "Kuldīga",
            "country": "LV",
            "contacts": CONTACTS,
        }
    )
    apply(view, withdrawn)
    apply(view, story[0])  # the acceptance again
    assert not view.active
