"""Action plans through the HTTP API: versions, review, progress, overdue, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pearls_shared.testing import wait_for

from .conftest import Service

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()


def plan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Culture keeps Kuldīga young",
        "language": "en",
        "starts_on": (TODAY - timedelta(days=60)).isoformat(),
        "ends_on": (TODAY + timedelta(days=300)).isoformat(),
        "goals": ["Young people run a festival of their own"],
        "measures": [
            {
                "title": "Youth festival board",
                "description": "Eight pupils plan the summer festival with the culture office.",
                "theme": "leisure_youth_social",
                "responsible": "Inese Kalniņa",
                "starts_on": (TODAY - timedelta(days=30)).isoformat(),
                "ends_on": (TODAY + timedelta(days=100)).isoformat(),
                "share_consent": True,
            }
        ],
        "milestones": [
            {
                "title": "Festival board formed",
                "due_date": (TODAY + timedelta(days=20)).isoformat(),
            },
            {"title": "Festival held", "due_date": (TODAY + timedelta(days=200)).isoformat()},
        ],
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def matched_participant(service: Service) -> tuple[uuid.UUID, str, dict[str, Any]]:
    """A participant with its applicant token and its mentor (with the mentor's token)."""
    mentor = await service.register_mentor()
    token = f"applicant-{uuid.uuid4().hex}"
    accepted = await service.join(token=token)
    await service.matched(accepted.application_id)
    return accepted.application_id, token, mentor


async def test_plan_is_revised_approved_reported_and_completed(service: Service) -> None:
    pid, token, mentor = await matched_participant(service)
    first = await service.client.put(
        f"/participants/{pid}/plan", json=plan_body(), headers=bearer(token)
    )
    assert first.status_code == 200, first.text
    assert first.json()["current_revision"] == 1 and first.json()["status"] == "submitted"

    asked = await service.client.post(
        f"/participants/{pid}/plan/reviews",
        json={"revision": 1, "decision": "request_changes", "comments": "Add a youth survey."},
        headers=bearer(mentor["token"]),
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "changes_requested"

    kept = first.json()["revisions"][0]["milestones"]
    revised = plan_body(
        milestones=[
            *(
                {"milestone_id": m["milestone_id"], "title": m["title"], "due_date": m["due_date"]}
                for m in kept
            ),
            {"title": "Youth survey done", "due_date": (TODAY + timedelta(days=40)).isoformat()},
        ]
    )
    second = await service.client.put(
        f"/participants/{pid}/plan", json=revised, headers=bearer(token)
    )
    assert second.status_code == 200, second.text
    plan = second.json()
    assert [r["revision"] for r in plan["revisions"]] == [1, 2]
    assert plan["revisions"][0]["review_status"] == "changes_requested"
    assert plan["revisions"][0]["comments"] == "Add a youth survey."
    assert {m["milestone_id"] for m in kept} <= {
        m["milestone_id"] for m in plan["revisions"][1]["milestones"]
    }

    approved = await service.client.post(
        f"/participants/{pid}/plan/reviews",
        json={"revision": 2, "decision": "approve"},
        headers=bearer(mentor["token"]),
    )
    assert approved.status_code == 200, approved.text
    milestones = approved.json()["milestones"]
    assert len(milestones) == 3

    outcomes = []
    for m in milestones:
        reached = await service.client.post(
            f"/participants/{pid}/plan/milestones/{m['milestone_id']}/reports",
            json={
                "note": f"{m['title']}: done with 40 volunteers.",
                "evidence_urls": ["https://kuldiga.example/news/festival"],
                "reached": True,
            },
            headers=bearer(token),
        )
        assert reached.status_code == 201, reached.text
        outcomes.append(reached.json()["plan_completed"])
    assert outcomes == [False, False, True]

    events = await service.wait_for_events(
        [pid],
        [
            "pearls.plan.submitted",
            "pearls.plan.submitted",
            "pearls.plan.changes_requested",
            "pearls.plan.approved",
            *["pearls.plan.milestone_reached"] * 3,
            "pearls.plan.completed",
        ],
    )
    submitted = [e.data["revision"] for e in events if e.type == "pearls.plan.submitted"]
    assert sorted(submitted) == [1, 2]
    [done] = [e for e in events if e.type == "pearls.plan.completed"]
    assert done.data["milestones_reached"] == done.data["milestones_total"] == 3
    assert len(done.data["achievements"]) == 3
    reached_counts = sorted(
        e.data["milestones_reached"] for e in events if e.type == "pearls.plan.milestone_reached"
    )
    assert reached_counts == [1, 2, 3]
    # The plan's revisions stay readable for the participant, its mentor and coordinators.
    for headers in (bearer(token), bearer(mentor["token"]), service.coordinator):
        seen = await service.client.get(f"/participants/{pid}/plan", headers=headers)
        assert seen.status_code == 200 and seen.json()["status"] == "completed"


async def test_bad_plan_input_is_refused_naming_the_field(service: Service) -> None:
    pid, token, mentor = await matched_participant(service)
    url = f"/participants/{pid}/plan"

    early = plan_body(
        milestones=[{"title": "Too early", "due_date": (TODAY - timedelta(days=90)).isoformat()}]
    )
    refused = await service.client.put(url, json=early, headers=bearer(token))
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "milestones", 0, "due_date"]
    assert problem["type"] == "due_after_plan_start"

    invented = plan_body(
        milestones=[
            {"milestone_id": str(uuid.uuid4()), "title": "x", "due_date": TODAY.isoformat()}
        ]
    )
    refused = await service.client.put(url, json=invented, headers=bearer(token))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "milestones", 0, "milestone_id"]

    submitted = await service.client.put(url, json=plan_body(), headers=bearer(token))
    assert submitted.status_code == 200
    some_milestone = submitted.json()["revisions"][0]["milestones"][0]["milestone_id"]
    report = {"note": "We met.", "reached": True}
    unapproved = await service.client.post(
        f"{url}/milestones/{some_milestone}/reports", json=report, headers=bearer(token)
    )
    assert unapproved.status_code == 409
    assert unapproved.json()["detail"][0]["type"] == "plan_approved_first"

    await service.client.post(
        f"{url}/reviews",
        json={"revision": 1, "decision": "approve"},
        headers=bearer(mentor["token"]),
    )
    unknown = await service.client.post(
        f"{url}/milestones/{uuid.uuid4()}/reports", json=report, headers=bearer(token)
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["path", "milestone_id"]

    approved_milestone = (await service.client.get(url, headers=bearer(token))).json()[
        "milestones"
    ][0]["milestone_id"]
    oversized = await service.client.post(
        f"{url}/milestones/{approved_milestone}/reports",
        json={"note": "x" * 4001, "reached": True},
        headers=bearer(token),
    )
    assert oversized.status_code == 422
    assert oversized.json()["detail"][0]["loc"] == ["body", "note"]
    too_many_links = await service.client.post(
        f"{url}/milestones/{approved_milestone}/reports",
        json={
            "note": "Photos.",
            "reached": True,
            "evidence_urls": [f"https://x.example/{i}" for i in range(11)],
        },
        headers=bearer(token),
    )
    assert too_many_links.status_code == 422
    assert too_many_links.json()["detail"][0]["loc"] == ["body", "evidence_urls"]
    twice = None
    for _ in range(2):
        twice = await service.client.post(
            f"{url}/milestones/{approved_milestone}/reports",
            json={"note": "Done.", "reached": True},
            headers=bearer(token),
        )
    assert twice is not None and twice.status_code == 409
    assert twice.json()["detail"][0]["type"] == "already_reached"

    not_after_approval = await service.client.put(url, json=plan_body(), headers=bearer(token))
    assert not_after_approval.status_code == 409
    assert not_after_approval.json()["detail"][0]["type"] == "plan_approved"


async def test_only_the_participant_writes_and_only_its_mentor_reviews(service: Service) -> None:
    pid, token, _ = await matched_participant(service)
    other_token = f"applicant-{uuid.uuid4().hex}"
    other = await service.join(token=other_token, city="Viljandi", country="EE")
    url = f"/participants/{pid}/plan"

    for headers in (bearer(other_token), bearer("no-such-token"), service.coordinator):
        foreign = await service.client.put(url, json=plan_body(), headers=headers)
        assert foreign.status_code == 404, foreign.text  # not yours: it does not exist for you
    missing = await service.client.put(url, json=plan_body())
    assert missing.status_code == 401

    assert (await service.client.put(url, json=plan_body(), headers=bearer(token))).is_success
    stranger = await service.register_mentor(email=f"stranger.{uuid.uuid4().hex[:6]}@example.org")
    # The stranger mentor may have been matched with the other participant, never with ours.
    review = {"revision": 1, "decision": "approve"}
    refused = await service.client.post(
        f"{url}/reviews", json=review, headers=bearer(stranger["token"])
    )
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["type"] == "own_participant"
    by_coordinator = await service.client.post(
        f"{url}/reviews", json=review, headers=service.coordinator
    )
    assert by_coordinator.status_code == 403
    peek = await service.client.get(url, headers=bearer(other_token))
    assert peek.status_code == 404
    assert other.application_id != pid


async def test_an_overdue_milestone_is_announced_once(service: Service) -> None:
    pid, token, mentor = await matched_participant(service)
    body = plan_body(
        milestones=[
            {"title": "Survey done", "due_date": (TODAY - timedelta(days=3)).isoformat()},
            {"title": "Festival held", "due_date": (TODAY + timedelta(days=3)).isoformat()},
        ]
    )
    url = f"/participants/{pid}/plan"
    assert (await service.client.put(url, json=body, headers=bearer(token))).is_success
    mentoring = service.app.state.mentoring
    assert await mentoring.notice_overdue() == 0  # not approved yet: nothing is due
    await service.client.post(
        f"{url}/reviews",
        json={"revision": 1, "decision": "approve"},
        headers=bearer(mentor["token"]),
    )
    assert await mentoring.notice_overdue() == 1
    assert await mentoring.notice_overdue() == 0
    assert await mentoring.notice_overdue(TODAY + timedelta(days=10)) == 1  # the second one
    events = await service.wait_for_events([pid], ["pearls.plan.milestone_overdue"] * 2)
    overdue = sorted(
        (e.data for e in events if e.type == "pearls.plan.milestone_overdue"),
        key=lambda d: d["milestone"]["due_date"],
    )
    assert [d["milestone"]["title"] for d in overdue] == ["Survey done", "Festival held"]
    assert overdue[0]["days_overdue"] == 3
    assert overdue[0]["mentor"]["mentor_id"] == mentor["mentor_id"]
    plan = (await service.client.get(url, headers=bearer(token))).json()
    assert plan["milestones"][0]["overdue_noticed_on"] == TODAY.isoformat()

    async def settled() -> bool:
        return len(await service.events_about([pid])) >= 4

    await wait_for(settled, what="events")
    assert date.fromisoformat(overdue[0]["detected_on"]) == TODAY
