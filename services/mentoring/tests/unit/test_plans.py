"""Rules of action plans: drafts, review, progress, overdue and achievements."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from pearls_mentoring.domain import plans
from pearls_mentoring.domain.plans import MeasureDraft, MilestoneDraft, MilestoneState, PlanDraft
from pearls_shared.errors import Conflict, Invalid

THEMES = ("culture_creative_industries", "leisure_youth_social")


def draft(**overrides: object) -> PlanDraft:
    fields: dict[str, object] = {
        "title": "Culture keeps Kuldīga young",
        "language": "en",
        "starts_on": date(2026, 1, 1),
        "ends_on": date(2026, 12, 31),
        "goals": ("Young people run a festival",),
        "measures": (
            MeasureDraft(
                None,
                "Festival board",
                "Pupils plan the festival.",
                "leisure_youth_social",
                "Culture office",
                date(2026, 2, 1),
                date(2026, 8, 31),
                True,
            ),
        ),
        "milestones": (
            MilestoneDraft(None, "Festival held", date(2026, 8, 1)),
            MilestoneDraft(None, "Board formed", date(2026, 3, 1)),
        ),
    }
    fields.update(overrides)
    return PlanDraft(**fields)  # type: ignore[arg-type]


def test_a_good_draft_gets_ids_and_milestones_in_due_date_order() -> None:
    checked = plans.check_draft(draft(), participant_themes=THEMES)
    assert [m.title for m in checked.milestones] == ["Board formed", "Festival held"]
    assert all(m.milestone_id is not None for m in checked.milestones)
    assert all(m.measure_id is not None for m in checked.measures)


def test_a_milestone_due_before_the_plan_starts_is_refused_naming_it() -> None:
    bad = draft(milestones=(MilestoneDraft(None, "Too early", date(2025, 12, 1)),))
    with pytest.raises(Invalid) as refused:
        plans.check_draft(bad, participant_themes=THEMES)
    assert refused.value.loc == ("body", "milestones", 0, "due_date")
    assert refused.value.rule == "due_after_plan_start"


@pytest.mark.parametrize(
    ("overrides", "loc", "rule"),
    [
        ({"ends_on": date(2025, 1, 1)}, ("body", "ends_on"), "after_start"),
        (
            {"milestones": (MilestoneDraft(None, "Late", date(2027, 1, 5)),)},
            ("body", "milestones", 0, "due_date"),
            "due_before_plan_end",
        ),
        (
            {"milestones": (MilestoneDraft(uuid.uuid4(), "Invented", date(2026, 5, 1)),)},
            ("body", "milestones", 0, "milestone_id"),
            "known_milestone",
        ),
        (
            {
                "measures": (
                    MeasureDraft(
                        None,
                        "x",
                        "y",
                        "ecology_health",
                        "z",
                        date(2026, 2, 1),
                        date(2026, 3, 1),
                        False,
                    ),
                )
            },
            ("body", "measures", 0, "theme"),
            "participant_theme",
        ),
        (
            {
                "measures": (
                    MeasureDraft(
                        None,
                        "x",
                        "y",
                        "leisure_youth_social",
                        "z",
                        date(2025, 2, 1),
                        date(2026, 3, 1),
                        False,
                    ),
                )
            },
            ("body", "measures", 0, "starts_on"),
            "within_plan",
        ),
    ],
)
def test_each_rule_names_its_field(
    overrides: dict[str, object], loc: tuple[object, ...], rule: str
) -> None:
    with pytest.raises(Invalid) as refused:
        plans.check_draft(draft(**overrides), participant_themes=THEMES)
    assert (refused.value.loc, refused.value.rule) == (loc, rule)


def test_a_revision_keeps_known_milestone_ids_and_refuses_a_repeat() -> None:
    kept = uuid.uuid4()
    ok = plans.check_draft(
        draft(milestones=(MilestoneDraft(kept, "Board formed", date(2026, 3, 1)),)),
        participant_themes=THEMES,
        known_milestones={kept},
    )
    assert ok.milestones[0].milestone_id == kept
    twice = draft(
        milestones=(
            MilestoneDraft(kept, "A", date(2026, 3, 1)),
            MilestoneDraft(kept, "B", date(2026, 4, 1)),
        )
    )
    with pytest.raises(Invalid) as refused:
        plans.check_draft(twice, participant_themes=THEMES, known_milestones={kept})
    assert refused.value.rule == "unique"


def test_review_and_submission_follow_the_plan_state() -> None:
    plans.may_submit(None)
    plans.may_submit("changes_requested")
    with pytest.raises(Conflict):
        plans.may_submit("approved")
    plans.may_review("submitted", 2, 2)
    with pytest.raises(Conflict) as stale:
        plans.may_review("submitted", 2, 1)
    assert stale.value.loc == ("body", "revision")
    with pytest.raises(Conflict):
        plans.may_review("changes_requested", 1, 1)
    with pytest.raises(Conflict) as unapproved:
        plans.may_report("submitted")
    assert unapproved.value.rule == "plan_approved_first"


def test_overdue_days_and_achievements() -> None:
    assert plans.days_overdue(date(2026, 3, 1), date(2026, 3, 4)) == 3
    assert plans.days_overdue(date(2026, 3, 1), date(2026, 3, 1)) == 0
    at = datetime(2026, 3, 2, tzinfo=UTC)
    states = [
        MilestoneState(
            uuid.uuid4(), "Board formed", date(2026, 3, 1), at, "Eight  pupils\njoined."
        ),
        MilestoneState(uuid.uuid4(), "Festival held", date(2026, 8, 1), None, None),
        MilestoneState(uuid.uuid4(), "Report", date(2026, 9, 1), at, "x" * 500),
    ]
    found = plans.achievements(states)
    assert found[0] == "Board formed: Eight pupils joined."
    assert len(found) == 2 and len(found[1]) == plans.MAX_ACHIEVEMENT_CHARS
