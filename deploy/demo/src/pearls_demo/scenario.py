"""The demo, played through the applications service's public HTTP API.

A coordinator opens a call; six smaller Baltic Sea cities apply (Riga is too
big for it, Husum submits twice); three reviewers score them, the coordinator
decides, and a participant's withdrawal lets the waitlisted city move up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


@dataclass(frozen=True)
class City:
    name: str
    country: str
    population: int
    contact: str
    email: str
    language: str
    themes: tuple[str, ...]
    quality: int  # how convincing the application is, 1-5: drives the demo's scores


CITIES = (
    City(
        "Kuldīga",
        "LV",
        10_500,
        "Inese Kalniņa",
        "inese@kuldiga.example",
        "lv",
        ("culture_creative_industries", "leisure_youth_social"),
        5,
    ),
    City(
        "Viljandi",
        "EE",
        17_000,
        "Mart Tamm",
        "mart@viljandi.example",
        "et",
        ("culture_creative_industries", "digital_participation"),
        4,
    ),
    City(
        "Husum",
        "DE",
        23_000,
        "Frauke Petersen",
        "frauke@husum.example",
        "de",
        ("ecology_health", "city_administration_development"),
        4,
    ),
    City(
        "Ystad",
        "SE",
        19_000,
        "Karin Nilsson",
        "karin@ystad.example",
        "sv",
        ("leisure_youth_social", "ecology_health"),
        3,
    ),
    City(
        "Jelenia Góra",
        "PL",
        77_000,
        "Tomasz Nowak",
        "tomasz@jeleniagora.example",
        "pl",
        ("innovation_economy", "culture_creative_industries"),
        2,
    ),
)
TOO_BIG = City(
    "Rīga",
    "LV",
    605_000,
    "Jānis Bērziņš",
    "janis@riga.example",
    "lv",
    ("digital_participation",),
    3,
)
REVIEWERS = (
    ("aino", "Aino Mets", "Tartu", "EE"),
    ("jonas", "Jonas Petraitis", "Klaipėda", "LT"),
    ("maja", "Maja Lindqvist", "Lund", "SE"),
)
PLACES = 3


def application(city: City) -> dict[str, Any]:
    return {
        "city_name": city.name,
        "place_kind": "city",
        "country": city.country,
        "population": city.population,
        "organisation_name": f"Town of {city.name}",
        "organisation_type": "municipality",
        "contacts": [
            {
                "name": city.contact,
                "email": city.email,
                "language": city.language,
                "role": "primary",
            },
        ],
        "themes": list(city.themes),
        "languages": [city.language, "en"],
        "motivation": f"{city.name} wants culture to keep young people and newcomers here.",
        "challenges": "An ageing population and few places where people meet.",
        "commitments": "A cultural coordinator half-time and a yearly budget for the plan.",
    }


class Demo:
    def __init__(self, client: httpx.AsyncClient, coordinator: str, say: Callable[[str], None]):
        self.client = client
        self.coordinator = {"Authorization": f"Bearer {coordinator}"}
        self.say = say

    async def request(
        self,
        method: str,
        path: str,
        *,
        expect: int,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        correlation = f"demo-{uuid.uuid4().hex[:8]}"
        response = await self.client.request(
            method, path, headers={"X-Correlation-ID": correlation, **(headers or {})}, **kwargs
        )
        if response.status_code != expect:
            raise RuntimeError(
                f"{method} {path}: expected {expect}, got {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None


async def play(
    base_url: str,
    *,
    coordinator_token: str,
    say: Callable[[str], None],
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        demo = Demo(client, coordinator_token, say)
        now = datetime.now(UTC)
        call = await demo.request(
            "POST",
            "/calls",
            expect=201,
            headers=demo.coordinator,
            json={
                "title": {
                    "en": "BSR Cultural Pearls: learning and mentoring programme",
                    "de": "BSR Cultural Pearls: Lern- und Mentoringprogramm",
                },
                "description": {
                    "en": "Culture and social resilience for smaller cities and regions."
                },
                "closes_at": (now + timedelta(hours=1)).isoformat(),
                "places": PLACES,
                "population_min": 5_000,
                "population_max": 150_000,
                "rubric": {
                    "scale_min": 1,
                    "scale_max": 5,
                    "criteria": [
                        {
                            "key": "relevance",
                            "label": {"en": "Relevance for social resilience"},
                            "weight": 2,
                        },
                        {
                            "key": "feasibility",
                            "label": {"en": "Feasibility of the plan"},
                            "weight": 1,
                        },
                        {"key": "community", "label": {"en": "Community engagement"}, "weight": 1},
                    ],
                },
                "reviews_required": 2,
                "conflict_same_country": True,
            },
        )
        call_id = call["call_id"]
        say(f"> coordinator opened the call ({PLACES} places, population 5,000-150,000)")

        receipts: dict[str, dict[str, Any]] = {}
        for number, city in enumerate(CITIES):
            key = f"demo-{number}-{call_id}"
            receipt = await demo.request(
                "POST",
                f"/calls/{call_id}/applications",
                expect=201,
                headers={"Idempotency-Key": key},
                json=application(city),
            )
            receipts[city.name] = receipt
            say(f"> {city.name} ({city.country}) applied")
        retry = await demo.request(
            "POST",
            f"/calls/{call_id}/applications",
            expect=201,
            headers={"Idempotency-Key": f"demo-2-{call_id}"},
            json=application(CITIES[2]),
        )
        assert retry["application_id"] == receipts["Husum"]["application_id"]
        say("> Husum's browser retried the same submission: the first answer came back")
        twice = await client.post(
            f"/calls/{call_id}/applications",
            json=application(CITIES[2]),
            headers={"Idempotency-Key": f"demo-2-again-{call_id}"},
        )
        say(f"> Husum submitted a second application: refused, {twice.status_code} {_rule(twice)}")
        too_big = await client.post(f"/calls/{call_id}/applications", json=application(TOO_BIG))
        say(f"> Rīga applied: refused, {too_big.status_code} {_rule(too_big)}")

        await demo.request("POST", f"/calls/{call_id}/close", expect=200, headers=demo.coordinator)
        say("> coordinator closed the call; review begins")
        tokens = {}
        for reviewer_id, name, city_name, country in REVIEWERS:
            registered = await demo.request(
                "POST",
                "/reviewers",
                expect=201,
                headers=demo.coordinator,
                json={
                    "reviewer_id": reviewer_id,
                    "name": name,
                    "city_name": city_name,
                    "country": country,
                },
            )
            tokens[reviewer_id] = registered["token"]
        spread = await demo.request(
            "POST", f"/calls/{call_id}/assignments/auto", expect=200, headers=demo.coordinator
        )
        refused = ", ".join(f"{r['reviewer_id']} ({r['reason']})" for r in spread["refused"])
        say(
            f"> {len(spread['assigned'])} review assignments spread over 3 reviewers"
            + (f"; conflicts skipped: {refused}" if refused else "")
        )
        quality = {receipts[c.name]["application_id"]: c.quality for c in CITIES}
        for reviewer_id, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            mine = await demo.request("GET", "/reviewers/me/assignments", expect=200, headers=auth)
            for assignment in mine:
                q = quality[assignment["application_id"]]
                await demo.request(
                    "POST",
                    f"/applications/{assignment['application_id']}/reviews",
                    expect=201,
                    headers=auth,
                    json={
                        "scores": {"relevance": q, "feasibility": max(1, q - 1), "community": q},
                        "comment": f"Reviewed by {reviewer_id}.",
                    },
                )
        say("> reviewers scored every application on the call's rubric")

        ranking = await demo.request(
            "GET", f"/calls/{call_id}/ranking", expect=200, headers=demo.coordinator
        )
        for position, entry in enumerate(ranking):
            path = f"/applications/{entry['application_id']}/decision"
            if position < PLACES:
                body: dict[str, Any] = {"decision": "accept"}
            elif position == PLACES:
                body = {"decision": "waitlist"}
            else:
                body = {
                    "decision": "reject",
                    "reason_code": "not_selected",
                    "reason": "Other applications matched the call's themes more closely.",
                }
            await demo.request("POST", path, expect=200, headers=demo.coordinator, json=body)
            say(f"> {entry['city_name']}: {body['decision']} (score {entry['score']:.0f})")

        leaving = next(e for e in ranking[:PLACES] if e["city_name"] == "Husum")
        token = receipts[leaving["city_name"]]["applicant_token"]
        await demo.request(
            "POST",
            f"/applications/{leaving['application_id']}/withdraw",
            expect=200,
            headers={"Authorization": f"Bearer {token}"},
            json={"reason": "The town council changed its priorities."},
        )
        say(f"> {leaving['city_name']} withdrew: the waitlisted city moves up")


def _rule(response: httpx.Response) -> str:
    try:
        detail = response.json()["detail"]
        return ", ".join(f"{'.'.join(map(str, d['loc']))}: {d['type']}" for d in detail)
    except (ValueError, KeyError, TypeError):
        return response.text[:120]
