"""Coordinators' and reviewers' tokens rotate through their files, without a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pearls_applications.bootstrap import create_app
from pearls_shared.settings import DeliverySettings

from .conftest import Service, make_settings

pytestmark = pytest.mark.integration

ANNA = "coordinator-token-0123456789"  # configured in the environment (conftest)
FILE_COORDINATOR = "file-coordinator-token-0123456789"
FILE_REVIEWER = "file-reviewer-token-0123456789"


def write(path: Path, entries: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    os.replace(tmp, path)


@pytest.fixture
async def rotating(postgres_server, kafka_settings, contract_topics, tmp_path):
    coordinators, reviewers = tmp_path / "coordinators.json", tmp_path / "reviewers.json"
    write(coordinators, [])
    write(reviewers, [])
    settings = make_settings(postgres_server.new_database("applications")).model_copy(
        update={"coordinators_file": coordinators, "reviewers_file": reviewers}
    )
    app = create_app(
        settings, kafka=kafka_settings, delivery=DeliverySettings(relay_poll_interval_s=0.2)
    )
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://applications") as client:
            yield (
                Service(
                    app,
                    client,
                    settings.database_url.get_secret_value(),
                    kafka_settings.bootstrap_servers,
                ),
                coordinators,
                reviewers,
            )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_coordinator_added_to_the_file_is_accepted_and_a_removed_one_refused(rotating):
    service, coordinators, _ = rotating
    assert (
        await service.client.get("/reviewers", headers=bearer(FILE_COORDINATOR))
    ).status_code == 401
    write(coordinators, [{"id": "birgit", "token": FILE_COORDINATOR}])
    call = await service.client.post(
        "/calls", json=service.call_body(), headers=bearer(FILE_COORDINATOR)
    )
    assert call.status_code == 201, call.text
    trail = await service.client.get(
        f"/calls/{call.json()['call_id']}/audit", headers=service.as_coordinator()
    )
    assert trail.json()[0]["actor"] == "coordinator:birgit"
    write(coordinators, [])
    assert (
        await service.client.get("/reviewers", headers=bearer(FILE_COORDINATOR))
    ).status_code == 401
    # The environment's coordinator is untouched by the file.
    assert (await service.client.get("/reviewers", headers=bearer(ANNA))).status_code == 200


async def test_a_malformed_file_keeps_the_last_good_tokens(rotating):
    service, coordinators, _ = rotating
    write(coordinators, [{"id": "birgit", "token": FILE_COORDINATOR}])
    assert (
        await service.client.get("/reviewers", headers=bearer(FILE_COORDINATOR))
    ).status_code == 200
    write(coordinators, '[{"id": "birgit", "token": ')
    assert (
        await service.client.get("/reviewers", headers=bearer(FILE_COORDINATOR))
    ).status_code == 200
    # A file that would give the environment's token to someone else changes nothing either.
    write(coordinators, [{"id": "mallory", "token": ANNA}])
    who = await service.client.post("/calls", json=service.call_body(), headers=bearer(ANNA))
    trail = await service.client.get(
        f"/calls/{who.json()['call_id']}/audit", headers=service.as_coordinator()
    )
    assert trail.json()[0]["actor"] == "coordinator:anna"
    assert (
        await service.client.get("/reviewers", headers=bearer(FILE_COORDINATOR))
    ).status_code == 200


async def test_reviewers_from_the_file_review_and_a_move_to_the_applicant_city_is_a_conflict(
    rotating,
):
    service, _, reviewers = rotating
    entry = {
        "id": "rev-file",
        "name": "Kadri Tamm",
        "city_name": "Tartu",
        "country": "EE",
        "token": FILE_REVIEWER,
    }
    write(reviewers, [entry])
    pool = await service.client.get("/reviewers", headers=service.as_coordinator())
    assert "rev-file" in {r["reviewer_id"] for r in pool.json()}
    call = await service.create_call(reviews_required=1)
    receipt = await service.submit(
        call["call_id"], city="Viljandi", country="EE", population=17_000
    )
    app_id = receipt["application_id"]
    assigned = await service.client.post(
        f"/applications/{app_id}/assignments",
        json={"reviewer_id": "rev-file"},
        headers=service.as_coordinator(),
    )
    assert assigned.status_code == 201, assigned.text
    await service.close(call["call_id"])
    # The reviewer moved to Viljandi since the assignment: the review is refused.
    write(reviewers, [entry | {"city_name": "Viljandi"}])
    body = {"scores": {"relevance": 4, "commitment": 4}, "comment": "Good."}
    refused = await service.client.post(
        f"/applications/{app_id}/reviews", json=body, headers=bearer(FILE_REVIEWER)
    )
    assert refused.status_code == 403 and "same_city" in refused.json()["detail"][0]["msg"]
    write(reviewers, [entry])
    recorded = await service.client.post(
        f"/applications/{app_id}/reviews", json=body, headers=bearer(FILE_REVIEWER)
    )
    assert recorded.status_code == 201, recorded.text
    # Removed from the file: the token opens nothing any more.
    write(reviewers, [])
    mine = await service.client.get("/reviewers/me/assignments", headers=bearer(FILE_REVIEWER))
    assert mine.status_code == 401
