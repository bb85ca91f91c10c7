"""A round through the HTTP API: jury conflicts, scoring, the BSR rule, showcase, revocation."""

from __future__ import annotations

import uuid
from typing import Any

import feedparser
import pytest

from pearls_shared.testing import wait_for

from .conftest import Service

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def scored(
    service: Service, round_id: str, token: str, pid: Any, impact: int, community: int
) -> int:
    r = await service.client.put(
        f"/rounds/{round_id}/nominees/{pid}/scores",
        json={"scores": {"impact": impact, "community": community}},
        headers=bearer(token),
    )
    return r.status_code


async def test_a_round_from_nominations_to_the_showcase(service: Service) -> None:
    mentor_email = f"kadri.{service.tag}@viljandi.example"
    body = service.round_body(awards_count=2)
    body["jurors"][1]["email"] = mentor_email  # Lars also mentored Kuldīga: a conflict
    round_ = await service.open_round(**{**body})
    rid = round_["round_id"]
    anna, lars = (j["token"] for j in round_["juror_tokens"])

    lubeck = service.participant(city="Lübeck", country="DE")
    rostock = service.participant(city="Rostock", country="DE")
    kuldiga = service.participant(city="Kuldīga", country="LV")
    for p in (lubeck, rostock, kuldiga):
        await service.eligible(p, reached=1)
    await service.publish(service.assigned(kuldiga, service.mentor_ref(email=mentor_email)))
    await service.view(kuldiga.id, lambda v: v["current_mentor_id"] is not None)

    async def all_nominated() -> bool:
        return {str(p.id) for p in (lubeck, rostock, kuldiga)} <= await service.nominees(rid)

    await wait_for(all_nominated, what="three nominations")

    # Scoring: the scale, every criterion, and the conflict of interest.
    out_of_scale = await service.client.put(
        f"/rounds/{rid}/nominees/{lubeck.id}/scores",
        json={"scores": {"impact": 11, "community": 5}},
        headers=bearer(anna),
    )
    assert out_of_scale.status_code == 422
    assert out_of_scale.json()["detail"][0]["loc"] == ["body", "scores", "impact"]
    assert out_of_scale.json()["detail"][0]["type"] == "scale"
    partial = await service.client.put(
        f"/rounds/{rid}/nominees/{lubeck.id}/scores",
        json={"scores": {"impact": 5}},
        headers=bearer(anna),
    )
    assert partial.status_code == 422 and partial.json()["detail"][0]["type"] == "every_criterion"
    excluded = await service.client.put(
        f"/rounds/{rid}/nominees/{kuldiga.id}/scores",
        json={"scores": {"impact": 10, "community": 10}},
        headers=bearer(lars),
    )
    assert excluded.status_code == 403
    assert excluded.json()["detail"][0]["type"] == "conflict_of_interest"
    assert "mentored" in excluded.json()["detail"][0]["msg"]
    not_a_juror = await service.client.put(
        f"/rounds/{rid}/nominees/{lubeck.id}/scores",
        json={"scores": {"impact": 5, "community": 5}},
        headers=service.coordinator,
    )
    assert not_a_juror.status_code == 403

    assert await scored(service, rid, anna, lubeck.id, 9, 9) == 200  # 90
    assert await scored(service, rid, lars, lubeck.id, 9, 9) == 200  # 90
    assert await scored(service, rid, anna, rostock.id, 9, 8) == 200  # 86.67
    assert await scored(service, rid, lars, rostock.id, 9, 9) == 200  # 90 -> 88.33
    assert await scored(service, rid, anna, kuldiga.id, 8, 8) == 200  # 80

    exclusions = await service.client.get(f"/rounds/{rid}/exclusions", headers=service.coordinator)
    assert [(e["participant_id"], e["reason"]) for e in exclusions.json()] == [
        (str(kuldiga.id), "mentored")
    ]
    provisional = await service.client.get(f"/rounds/{rid}/result", headers=service.coordinator)
    assert provisional.json()["status"] == "provisional"

    # Ineligible nominations are refused naming the rule.
    early = service.participant(city="Ystad", country="SE")
    await service.publish(early.accepted)
    await service.view(early.id)
    refused = await service.client.post(
        f"/rounds/{rid}/nominations",
        json={"participant_id": str(early.id), "statement": "A great festival."},
        headers=service.coordinator,
    )
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["type"] == "plan_approved"
    unknown = await service.client.post(
        f"/rounds/{rid}/nominations",
        json={"participant_id": str(uuid.uuid4()), "statement": "?"},
        headers=service.coordinator,
    )
    assert unknown.status_code == 409 and unknown.json()["detail"][0]["type"] == "participant"

    closed = await service.client.post(
        f"/rounds/{rid}/close",
        json={"citations": {str(lubeck.id): {"en": "Lübeck opened its harbour to culture."}}},
        headers=service.coordinator,
    )
    assert closed.status_code == 200, closed.text
    result = closed.json()
    winners = {w["participant_id"]: w for w in result["winners"]}
    assert list(winners) == [str(lubeck.id), str(rostock.id), str(kuldiga.id)]
    assert winners[str(rostock.id)]["additional_award"] is True  # tight, quota-exempt
    assert winners[str(kuldiga.id)]["additional_award"] is False
    assert [w["rank"] for w in result["winners"]] == [1, 2, 3]
    twice = await service.client.post(f"/rounds/{rid}/close", json={}, headers=service.coordinator)
    assert twice.status_code == 409 and twice.json()["detail"][0]["type"] == "round_open"
    final = await service.client.get(f"/rounds/{rid}/result", headers=service.coordinator)
    assert final.json()["status"] == "final"
    assert final.json()["exclusions"][0]["reason"] == "mentored"

    events = await wait_for(
        lambda: _granted(service, [lubeck.id, rostock.id, kuldiga.id]), what="three awards"
    )
    assert {e.data["participant_id"]: e.data["additional_award"] for e in events} == {
        str(lubeck.id): False,
        str(rostock.id): True,
        str(kuldiga.id): False,
    }
    [lubeck_award] = [e for e in events if e.data["participant_id"] == str(lubeck.id)]
    assert lubeck_award.data["citation"] == {"en": "Lübeck opened its harbour to culture."}
    [closing] = await wait_for(
        lambda: _of_type(service, [rid], "pearls.award.round_closed"), what="round_closed"
    )
    assert [w["rank"] for w in closing.data["winners"]] == [1, 2, 3]

    # The showcase: public, no personal data, cheap to poll.
    page = await service.client.get("/showcase")
    assert page.status_code == 200
    for city in ("Lübeck", "Rostock", "Kuldīga"):
        assert city in page.text
    assert "@" not in page.text and "Inese" not in page.text
    again = await service.client.get("/showcase", headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    listed = await service.client.get("/showcase.json")
    mine = [x for x in listed.json() if x["round_id"] == rid]
    assert len(mine) == 3
    pearl = await service.client.get(mine[0]["url"].removeprefix("http://awards.test"))
    assert pearl.status_code == 200 and "Lübeck opened its harbour to culture." in pearl.text
    feed = feedparser.parse((await service.client.get("/showcase/feed.atom")).content)
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) == len(listed.json())

    # Revocation: the pearl leaves the showcase, the participant is told why.
    revoked = await service.client.post(
        f"/rounds/{rid}/awards/{kuldiga.id}/revoke",
        json={"reason": "The festival named in the citation did not take place."},
        headers=service.coordinator,
    )
    assert revoked.status_code == 200
    again = await service.client.post(
        f"/rounds/{rid}/awards/{kuldiga.id}/revoke",
        json={"reason": "Twice."},
        headers=service.coordinator,
    )
    assert again.status_code == 409
    after = await service.client.get("/showcase", headers={"If-None-Match": page.headers["ETag"]})
    assert after.status_code == 200 and "Kuldīga" not in after.text
    await wait_for(lambda: _of_type(service, [kuldiga.id], "pearls.award.revoked"), what="revoked")


async def _of_type(service: Service, ids: list[Any], event_type: str) -> list[Any]:
    return [e for e in await service.events_about(ids) if e.type == event_type]


async def _granted(service: Service, ids: list[Any]) -> list[Any] | None:
    found = await _of_type(service, ids, "pearls.award.granted")
    return found if len(found) == len(ids) else None


async def test_scoring_after_the_deadline_or_outside_the_round_is_refused(service: Service) -> None:
    round_ = await service.open_round()
    other = await service.open_round()
    p = service.participant(city="Gdynia", country="PL")
    await service.eligible(p, reached=2)

    async def nominated() -> bool:
        return str(p.id) in await service.nominees(round_["round_id"])

    await wait_for(nominated, what="nomination")
    other_juror = other["juror_tokens"][0]["token"]
    wrong_round = await service.client.put(
        f"/rounds/{round_['round_id']}/nominees/{p.id}/scores",
        json={"scores": {"impact": 5, "community": 5}},
        headers=bearer(other_juror),
    )
    assert wrong_round.status_code == 403
    hidden = await service.client.get(f"/rounds/{round_['round_id']}", headers=bearer(other_juror))
    assert hidden.status_code == 404
    awards = service.app.state.awards
    real_clock = awards.clock
    from datetime import timedelta

    awards.clock = lambda: real_clock() + timedelta(days=8)
    try:
        late = await service.client.put(
            f"/rounds/{round_['round_id']}/nominees/{p.id}/scores",
            json={"scores": {"impact": 5, "community": 5}},
            headers=bearer(round_["juror_tokens"][0]["token"]),
        )
    finally:
        awards.clock = real_clock
    assert late.status_code == 409 and late.json()["detail"][0]["type"] == "scoring_deadline"
    past = await service.client.post(
        "/rounds",
        json=service.round_body(closes_at="2020-01-01T00:00:00+00:00"),
        headers=service.coordinator,
    )
    assert past.status_code == 422 and past.json()["detail"][0]["loc"] == ["body", "closes_at"]
