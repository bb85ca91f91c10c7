"""The demo, played through the public HTTP APIs of applications, mentoring and awards.

A coordinator opens a call; eight smaller Baltic Sea cities apply (Riga is too
big for it, Husum submits twice); three reviewers score them while the
coordinator registers the mentor pool, the coordinator decides, and the
mentoring service matches the accepted cities with mentors, explaining why.
A participant's withdrawal frees its mentor and lets the waitlisted city move
up. Kuldīga then writes its action plan: its mentor asks for changes, approves
the second revision, Kuldīga reports milestones reached while one overdue
milestone is noticed; a measure goes to the public playbook and a co-learning
session is scheduled from the service's proposal.

Then the award: the other participants carry out their plans, the coordinator
opens a round (two awards, at most one per country, one additional award on a
tight score) and the awards service nominates whoever is eligible, at once or
as soon as mentoring's events make them so. It works out which juror may not
score whom; the jury scores, and the BSR rule decides, with a reason for every
nominee: two Latvian cities come first and second, the quota gives the second
regular award to Viljandi and the additional one to Cēsis. The winners are
published in the public showcase.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

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
    # A second Latvian and a second Estonian city: the award's country quota has
    # something to decide.
    City(
        "Cēsis",
        "LV",
        15_000,
        "Līga Ozola",
        "liga@cesis.example",
        "lv",
        ("innovation_economy", "digital_participation"),
        4,
    ),
    City(
        "Haapsalu",
        "EE",
        9_500,
        "Triin Kask",
        "triin@haapsalu.example",
        "et",
        ("ecology_health", "innovation_economy"),
        4,
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
PLACES = 5

# The mentor pool: national experts and an experienced "pearl" city, from several
# countries. Viljandi is both a pearl city and (in this demo) an applicant: a
# mentor never mentors its own city, so the matcher has to look elsewhere for it.
MENTORS: tuple[dict[str, Any], ...] = (
    {
        "kind": "national_expert",
        "name": "Rasa Jankauskienė",
        "email": "rasa@balticculture.example",
        "language": "lt",
        "languages": ["lt", "lv", "et", "en"],
        "country": "LT",
        "organisation": "Baltic Culture Network",
        "capacity": 2,
        "themes": ["culture_creative_industries", "digital_participation"],
    },
    {
        "kind": "national_expert",
        "name": "Claudia Becker",
        "email": "claudia@boell-sh.example",
        "language": "de",
        "languages": ["de", "en"],
        "country": "DE",
        "organisation": "Heinrich-Böll-Stiftung Schleswig-Holstein",
        "capacity": 2,
        "themes": ["ecology_health", "city_administration_development", "leisure_youth_social"],
    },
    {
        "kind": "pearl_city",
        "name": "Kadri Tamm",
        "email": "kadri@viljandi-pearl.example",
        "language": "et",
        "languages": ["et", "en"],
        "country": "EE",
        "city_name": "Viljandi",
        "organisation": "Viljandi town culture department",
        "capacity": 2,
        "themes": ["culture_creative_industries", "leisure_youth_social"],
    },
    {
        "kind": "national_expert",
        "name": "Mikko Laine",
        "email": "mikko@kulttuuriverkosto.example",
        "language": "fi",
        "languages": ["fi", "sv", "en"],
        "country": "FI",
        "organisation": "Finnish Culture Network",
        "capacity": 2,
        "themes": ["innovation_economy", "digital_participation", "ecology_health"],
    },
)
PLANNER = "Kuldīga"  # the participant whose action plan the demo follows


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


def call_request(now: datetime, places: int = PLACES) -> dict[str, Any]:
    """The call the demo opens: open for an hour, smaller and medium-sized places, a rubric."""
    return {
        "title": {
            "en": "BSR Cultural Pearls: learning and mentoring programme",
            "de": "BSR Cultural Pearls: Lern- und Mentoringprogramm",
        },
        "description": {"en": "Culture and social resilience for smaller cities and regions."},
        "closes_at": (now + timedelta(hours=1)).isoformat(),
        "places": places,
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


async def apply(
    demo: Demo, call_id: str, city: City, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The city's application to the call; its receipt (application id, applicant token)."""
    receipt: dict[str, Any] = await demo.request(
        "POST",
        f"/calls/{call_id}/applications",
        expect=201,
        headers=headers,
        json=application(city),
    )
    return receipt


async def register_reviewers(
    demo: Demo, reviewers: tuple[tuple[str, str, str, str], ...] = REVIEWERS
) -> dict[str, str]:
    """The coordinator registers the reviewers; their tokens by reviewer id."""
    tokens = {}
    for reviewer_id, name, city_name, country in reviewers:
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
    return tokens


async def review(
    demo: Demo, call_id: str, tokens: dict[str, str], quality: dict[str, int]
) -> dict[str, Any]:
    """Reviews spread by the service, each scored after the application's quality (1-5);
    the spread (assigned, and refused for a conflict of interest) is returned."""
    spread: dict[str, Any] = await demo.request(
        "POST", f"/calls/{call_id}/assignments/auto", expect=200, headers=demo.coordinator
    )
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
    return spread


async def play(
    applications_url: str,
    mentoring_url: str,
    awards_url: str,
    *,
    coordinator_token: str,
    say: Callable[[str], None],
) -> None:
    async with (
        httpx.AsyncClient(base_url=applications_url, timeout=30.0) as client,
        httpx.AsyncClient(base_url=mentoring_url, timeout=30.0) as mentoring_client,
        httpx.AsyncClient(base_url=awards_url, timeout=30.0) as awards_client,
    ):
        demo = Demo(client, coordinator_token, say)
        mentoring = Demo(mentoring_client, coordinator_token, say)
        awards = Demo(awards_client, coordinator_token, say)
        now = datetime.now(UTC)
        call = await demo.request(
            "POST", "/calls", expect=201, headers=demo.coordinator, json=call_request(now)
        )
        call_id = call["call_id"]
        say(f"> coordinator opened the call ({PLACES} places, population 5,000-150,000)")

        receipts: dict[str, dict[str, Any]] = {}
        for number, city in enumerate(CITIES):
            key = f"demo-{number}-{call_id}"
            receipts[city.name] = await apply(demo, call_id, city, {"Idempotency-Key": key})
            say(f"> {city.name} ({city.country}) applied")
        retry = await apply(demo, call_id, CITIES[2], {"Idempotency-Key": f"demo-2-{call_id}"})
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
        tokens = await register_reviewers(demo)
        quality = {receipts[c.name]["application_id"]: c.quality for c in CITIES}
        spread = await review(demo, call_id, tokens, quality)
        refused = ", ".join(f"{r['reviewer_id']} ({r['reason']})" for r in spread["refused"])
        say(
            f"> {len(spread['assigned'])} review assignments spread over {len(tokens)} reviewers"
            + (f"; conflicts skipped: {refused}" if refused else "")
        )
        say("> reviewers scored every application on the call's rubric")
        pool = await register_mentors(mentoring)

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
        accepted = {e["application_id"] for e in ranking[:PLACES]}
        say(
            "> the mentoring service gives each accepted city a mentor (a free place, a shared"
            " language, never its own city) and says why:"
        )
        for participant in await wait_matched(mentoring, accepted):
            say_match(say, participant, pool)
        if any(e["city_name"] == "Viljandi" for e in ranking[:PLACES]):
            say("  (the pearl city Viljandi does not mentor Viljandi: never its own city)")

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
        moving_up = ranking[PLACES]
        left, joined = await wait_left_and_matched(
            mentoring, leaving["application_id"], moving_up["application_id"]
        )
        say(f"> {left['city_name']} left mentoring; its mentor's place is free again")
        say_match(say, joined, pool)

        planner = next(c for c in CITIES if c.name == PLANNER)
        receipt = receipts[planner.name]
        participant = {"participant_id": receipt["application_id"], "city_name": planner.name}
        await action_plan(mentoring, participant, receipt["applicant_token"], pool)
        await co_learning(mentoring, pool)

        tokens_of = {
            e["city_name"]: (e["application_id"], receipts[e["city_name"]]["applicant_token"])
            for e in ranking
            if e["application_id"] in accepted | {moving_up["application_id"]}
            and e["city_name"] != leaving["city_name"]
        }
        await award_round(mentoring, awards, tokens_of, pool)
        say(f"> the pearls are public at {awards_url}/showcase")


# -- mentoring --------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class RegisteredMentor:
    mentor_id: str
    name: str
    about: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


Pool = dict[str, RegisteredMentor]


async def wait_until(
    what: str, probe: Callable[[], Awaitable[tuple[T | None, str]]], within: float = 60.0
) -> T:
    """Poll ``probe`` (the answer, or None and what it sees now) until it answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found, seen = await probe()
        if found is not None:
            return found
        if loop.time() > deadline:
            raise RuntimeError(f"gave up waiting {within:.0f}s for {what}; last seen: {seen}")
        await asyncio.sleep(0.5)


async def register_mentors(mentoring: Demo, mentors: tuple[dict[str, Any], ...] = MENTORS) -> Pool:
    pool: Pool = {}
    for body in mentors:
        reply = await mentoring.request(
            "POST", "/mentors", expect=201, headers=mentoring.coordinator, json=body
        )
        about = (
            f"pearl city {body['city_name']}, {body['country']}"
            if body["kind"] == "pearl_city"
            else f"national expert, {body['country']}"
        )
        pool[reply["mentor_id"]] = RegisteredMentor(
            reply["mentor_id"], body["name"], about, reply["token"]
        )
        mentoring.say(
            f"> coordinator registered mentor {body['name']} ({about};"
            f" works in {'/'.join(body['languages'])}; {body['capacity']} places)"
        )
    return pool


async def participants(mentoring: Demo) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await mentoring.request(
        "GET", "/participants", expect=200, headers=mentoring.coordinator, params={"limit": 200}
    )
    return found


def _state(rows: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{p['city_name']}: {p['status']}"
        + (f" ({p['waiting']['summary']})" if p.get("waiting") else "")
        for p in rows
    )


async def wait_matched(mentoring: Demo, ids: set[str]) -> list[dict[str, Any]]:
    """The accepted participants, once the matcher has given each a mentor."""

    async def probe() -> tuple[list[dict[str, Any]] | None, str]:
        rows = [p for p in await participants(mentoring) if p["participant_id"] in ids]
        done = len(rows) == len(ids) and all(p["status"] == "matched" for p in rows)
        return (rows if done else None), _state(rows) or "no participant yet"

    return await wait_until("the accepted cities to be matched", probe)


async def wait_left_and_matched(
    mentoring: Demo, leaving: str, joining: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The withdrawn participant out of mentoring, the one moving up matched."""

    async def probe() -> tuple[tuple[dict[str, Any], dict[str, Any]] | None, str]:
        rows = {p["participant_id"]: p for p in await participants(mentoring)}
        left, joined = rows.get(leaving), rows.get(joining)
        done = (
            left is not None
            and joined is not None
            and left["status"] == "withdrawn"
            and joined["status"] == "matched"
        )
        seen = _state([p for p in (left, joined) if p is not None]) or "neither yet"
        return ((left, joined) if done and left and joined else None), seen

    return await wait_until("the withdrawal and the new participant's match", probe)


def say_match(say: Callable[[str], None], participant: dict[str, Any], pool: Pool) -> None:
    """One matched participant: its mentor, the points per criterion and why."""
    why, mentor = participant["explanation"], participant["mentor"]
    known = pool.get(mentor["mentor_id"])
    points = why["criteria"]
    say(
        f"  {participant['city_name']} ({participant['country']}) <- {mentor['name']}"
        + (f" ({known.about})" if known else "")
        + f": score {why['score']:.2f} = themes {points.get('theme_overlap', 0):.2f}"
        f" + cross-border {points.get('cross_border', 0):.2f}"
        f" + balanced load {points.get('balanced_load', 0):.2f}"
    )
    say(f"      why: {why['summary']}")


OVERDUE = "Agreement with shop owners signed"
REPORTS = (
    (
        "Youth festival board formed",
        "Eight pupils from both schools meet every second Tuesday in the library.",
        ["https://kuldiga.example/news/festival-board", "https://kuldiga.example/minutes/1.pdf"],
    ),
    (
        "First empty shop opened for artists",
        "A ceramics studio opened in Liepājas iela 7; 140 visitors on the first weekend.",
        ["https://kuldiga.example/news/first-shop"],
    ),
)
ASKED_FOR = "Survey: how many young people took part"


def plan_draft(today: date) -> dict[str, Any]:
    """Kuldīga's action plan: it started two months ago, one milestone is already late."""

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    return {
        "title": "Culture keeps Kuldīga young",
        "language": "en",
        "starts_on": day(-60),
        "ends_on": day(300),
        "goals": [
            "Young people run a festival of their own",
            "Empty shops in the old town become places where people meet",
        ],
        "measures": [
            {
                "title": "Youth festival board",
                "description": "Eight pupils plan the summer festival with the culture office"
                " and decide how its budget is spent.",
                "theme": "leisure_youth_social",
                "responsible": "Culture office, youth worker",
                "starts_on": day(-60),
                "ends_on": day(150),
                "share_consent": True,
            },
            {
                "title": "Pop-up culture shops in the old town",
                "description": "Empty shops become studios and meeting places, six months each.",
                "theme": "culture_creative_industries",
                "responsible": "Town development department",
                "starts_on": day(-30),
                "ends_on": day(300),
                "share_consent": False,
            },
        ],
        "milestones": [
            {"title": OVERDUE, "due_date": day(-7)},
            {"title": REPORTS[0][0], "due_date": day(14)},
            {"title": REPORTS[1][0], "due_date": day(30)},
            {"title": "Summer festival run by the youth board", "due_date": day(120)},
        ],
    }


async def action_plan(
    mentoring: Demo, participant: dict[str, Any], applicant_token: str, pool: Pool
) -> None:
    """Plan, changes asked for, revision 2 approved, milestones reached, one overdue."""
    say, pid, city = mentoring.say, participant["participant_id"], participant["city_name"]
    applicant = {"Authorization": f"Bearer {applicant_token}"}
    path = f"/participants/{pid}/plan"
    me = await mentoring.request("GET", f"/participants/{pid}", expect=200, headers=applicant)
    mentor = pool[me["mentor"]["mentor_id"]]

    draft = plan_draft(datetime.now(UTC).date())
    plan = await mentoring.request("PUT", path, expect=200, headers=applicant, json=draft)
    say(
        f'> {city} submitted its action plan "{draft["title"]}" with the token of its'
        f" application (revision {plan['current_revision']}: {len(draft['measures'])} measures,"
        f" {len(draft['milestones'])} milestones, one of them due a week ago)"
    )
    comments = (
        "Please add a milestone that shows how many young people took part,"
        " so we can tell whether the plan works."
    )
    await mentoring.request(
        "POST",
        f"{path}/reviews",
        expect=200,
        headers=mentor.auth,
        json={
            "revision": plan["current_revision"],
            "decision": "request_changes",
            "comments": comments,
        },
    )
    say(f"> {mentor.name} asked for changes: {comments}")

    first = plan["revisions"][-1]
    kept = [
        {"milestone_id": m["milestone_id"], "title": m["title"], "due_date": m["due_date"]}
        for m in first["milestones"]
    ]
    revised = {
        **draft,
        "measures": first["measures"],  # with their ids: the same measures
        "milestones": [*kept, {"title": ASKED_FOR, "due_date": draft["ends_on"]}],
    }
    plan = await mentoring.request("PUT", path, expect=200, headers=applicant, json=revised)
    say(
        f"> {city} resubmitted: revision {plan['current_revision']} keeps its {len(kept)}"
        f' milestones (same ids) and adds "{ASKED_FOR}"'
    )
    await mentoring.request(
        "POST",
        f"{path}/reviews",
        expect=200,
        headers=mentor.auth,
        json={
            "revision": plan["current_revision"],
            "decision": "approve",
            "comments": "Clear and doable. Good luck with the festival!",
        },
    )
    say(f"> {mentor.name} approved revision {plan['current_revision']}")

    plan = await mentoring.request("GET", path, expect=200, headers=applicant)
    milestones = {m["title"]: m for m in plan["milestones"]}
    for title, note, evidence in REPORTS:
        await mentoring.request(
            "POST",
            f"{path}/milestones/{milestones[title]['milestone_id']}/reports",
            expect=201,
            headers=applicant,
            json={"note": note, "evidence_urls": evidence, "reached": True},
        )
        say(f'> {city} reported "{title}" reached, with evidence ({evidence[0]})')

    async def noticed() -> tuple[dict[str, Any] | None, str]:
        now = await mentoring.request("GET", path, expect=200, headers=applicant)
        late = next(m for m in now["milestones"] if m["title"] == OVERDUE)
        return (late if late["overdue_noticed_on"] else None), f"{late}"

    late = await wait_until("the overdue milestone to be noticed", noticed)
    say(
        f'> the overdue check noticed "{OVERDUE}" (due {late["due_date"]}, not reached):'
        " announced once, to the city and its mentor"
    )

    measures = plan["revisions"][-1]["measures"]
    private = next(m for m in measures if not m["share_consent"])
    refused = await mentoring.client.post(
        f"{path}/measures/{private['measure_id']}/publish", headers=mentoring.coordinator
    )
    say(
        f'> publishing "{private["title"]}" in the playbook: refused,'
        f" {refused.status_code} {_rule(refused)}"
    )
    shared = next(m for m in measures if m["share_consent"])
    await mentoring.request(
        "POST",
        f"{path}/measures/{shared['measure_id']}/publish",
        expect=201,
        headers=mentoring.coordinator,
    )
    query = {"theme": shared["theme"], "q": "festival"}
    found = await mentoring.request("GET", "/playbook", expect=200, params=query)
    say(
        f'> coordinator published "{shared["title"]}" ({city} agreed to share it); anyone finds'
        f" it: GET /playbook?theme={query['theme']}&q={query['q']} -> "
        + "; ".join(f"{e['title']} ({e['city_name']}, {e['country']})" for e in found)
    )


async def co_learning(mentoring: Demo, pool: Pool) -> None:
    """A co-learning session for the group the service proposes, hosted by their mentors."""
    say = mentoring.say
    proposals = await mentoring.request(
        "GET", "/sessions/proposals", expect=200, headers=mentoring.coordinator
    )
    if not proposals:
        raise RuntimeError("the mentoring service proposed no co-learning group")
    group = proposals[0]
    say(f"> the service proposes a co-learning group: {group['why']}")
    members = [p["participant_id"] for p in group["participants"]]
    hosts: list[str] = []
    for pid in members:
        p = await mentoring.request(
            "GET", f"/participants/{pid}", expect=200, headers=mentoring.coordinator
        )
        if p["mentor"] and p["mentor"]["mentor_id"] not in hosts:
            hosts.append(p["mentor"]["mentor_id"])
    host = pool[hosts[0]]
    on = datetime.now(UTC).date() + timedelta(days=21)
    cities = " and ".join(p["city_name"] for p in group["participants"])
    await mentoring.request(
        "POST",
        "/sessions",
        expect=201,
        headers=host.auth,
        json={
            "title": "Culture that keeps young people in town",
            "language": group["language"] or "en",
            "time_zone": "Europe/Tallinn",
            "starts_at": f"{on.isoformat()}T14:00:00",
            "ends_at": f"{on.isoformat()}T16:00:00",
            "location": "Viljandi, Estonian Traditional Music Centre",
            "online_url": "https://meet.example/pearls-culture",
            "themes": [group["theme"]],
            "agenda": [
                f"{cities}: what we tried so far",
                "Youth boards: giving young people a budget",
                "Next steps and who helps whom",
            ],
            "host_mentor_ids": hosts,
            "participant_ids": members,
        },
    )
    co_hosts = [pool[h].name for h in hosts[1:]]
    say(
        f"> {host.name} scheduled a co-learning session for {cities} on {on} 14:00-16:00"
        " Europe/Tallinn" + (f", hosted with {', '.join(co_hosts)}" if co_hosts else "")
    )


# -- awards ------------------------------------------------------------------------------

# The round: two regular awards, at most one per country, and one additional award
# (exempt from the country rule) when the next score is within the margin.
AWARDS_COUNT, PER_COUNTRY, TIGHT_MARGIN, MIN_MILESTONE_SHARE = 2, 1, 2.0, 0.5
CRITERIA = (
    ("impact", "Impact on the town's social resilience", 2),
    ("community", "Community engagement", 1),
    ("learning", "What other cities can learn from it", 1),
)
# Kadri Tamm mentored Kuldīga and comes from Viljandi: the awards service works
# both conflicts out from the events and does not let her score those two.
JURORS: tuple[dict[str, str], ...] = (
    {
        "name": "Kadri Tamm",
        "email": "kadri@viljandi-pearl.example",
        "language": "et",
        "city_name": "Viljandi",
        "country": "EE",
    },
    {
        "name": "Birgit Lorenzen",
        "email": "birgit@kulturnetz-sh.example",
        "language": "de",
        "city_name": "Flensburg",
        "country": "DE",
    },
    {
        "name": "Piotr Zieliński",
        "email": "piotr@baltic-culture-fund.example",
        "language": "pl",
        "city_name": "Gdańsk",
        "country": "PL",
    },
)
# Each juror's score sheets, 0-10 per criterion (impact, community, learning).
# Kadri Tamm tries Kuldīga anyway and is refused. Weighted, on 0-100: Kuldīga
# 90.00, Cēsis 85.00, Viljandi 83.75, Haapsalu 75.00, Ystad 70.00. Cēsis comes
# second, but Latvia has its award already: Viljandi gets the second regular
# award and Cēsis, 1.25 points above it, the additional one.
SCORES: dict[str, dict[str, tuple[int, int, int]]] = {
    "Kadri Tamm": {
        "Kuldīga": (10, 10, 10),
        "Cēsis": (9, 8, 8),
        "Haapsalu": (7, 8, 8),
        "Ystad": (7, 7, 7),
    },
    "Birgit Lorenzen": {
        "Kuldīga": (9, 9, 9),
        "Viljandi": (8, 9, 9),
        "Cēsis": (8, 9, 9),
        "Haapsalu": (8, 7, 7),
        "Ystad": (7, 8, 6),
    },
    "Piotr Zieliński": {
        "Kuldīga": (9, 10, 8),
        "Viljandi": (8, 8, 9),
        "Cēsis": (9, 8, 8),
        "Haapsalu": (7, 8, 8),
        "Ystad": (7, 7, 7),
    },
}
CITATIONS: dict[str, dict[str, str]] = {
    "Kuldīga": {
        "en": "Kuldīga gave its young people a festival of their own and opened the empty shops"
        " of its old town to artists: a small town that shows how culture keeps people at home.",
        "lv": "Kuldīga ļāva jauniešiem rīkot pašiem savu festivālu un atvēra vecpilsētas tukšos"
        " veikalus māksliniekiem.",
    },
    "Viljandi": {
        "en": "Viljandi opened its folk music to everyone who lives there and put the town's own"
        " songs online, street by street.",
    },
    "Cēsis": {
        "en": "Cēsis turned an old brewery into a makerspace and found its empty premises new"
        " tenants from the creative economy.",
    },
}


@dataclass(frozen=True)
class Progress:
    """A participant's action plan, approved by its mentor and carried out in part."""

    title: str
    goal: str
    measure: tuple[str, str, str]  # title, description, theme (one of the city's)
    milestones: tuple[tuple[str, str], ...]  # title, the evidence once reached
    reached: int  # milestones reported reached before the award round opens


PROGRESS: dict[str, Progress] = {
    "Viljandi": Progress(
        "Folk music for the whole town",
        "Everyone in Viljandi can play, sing and hear folk music, not only festival guests",
        (
            "Open rehearsals",
            "Folk musicians rehearse in public once a week and invite everyone to join in.",
            "culture_creative_industries",
        ),
        (
            (
                "Open rehearsals in the Traditional Music Centre",
                "Twelve open rehearsals with 900 visitors, a third of them under 25.",
            ),
            (
                "The town's songs online",
                "420 songs recorded by people of Viljandi are online, searchable by street.",
            ),
            ("Folk evenings in three neighbourhoods", ""),
        ),
        2,
    ),
    "Cēsis": Progress(
        "Cēsis makes room for makers",
        "Young people find work in Cēsis in crafts, design and digital media",
        (
            "Makerspace in the old brewery",
            "A makerspace with workshops, tools and mentoring for young makers.",
            "innovation_economy",
        ),
        (
            (
                "Makerspace open in the old brewery",
                "Open four evenings a week; 60 members after two months.",
            ),
            (
                "Map of empty premises online",
                "38 empty premises listed; seven rented to creative businesses.",
            ),
            ("Ten new creative businesses", ""),
        ),
        2,
    ),
    "Haapsalu": Progress(
        "A green seaside town",
        "People of all ages look after the shore and the town together",
        (
            "Repair café",
            "A monthly repair café in the culture centre, run by volunteers.",
            "ecology_health",
        ),
        (
            (
                "Seaside clean-up festival",
                "300 volunteers cleared two kilometres of shore; the school band played.",
            ),
            (
                "Repair café in the culture centre",
                "Monthly since March; about 45 things repaired each time.",
            ),
            ("Local food market every Saturday", ""),
        ),
        2,
    ),
    "Ystad": Progress(
        "Ystad outdoors, together",
        "Young and old people meet outdoors, all year round",
        (
            "Harbour cinema",
            "The youth council chooses and runs open-air films at the harbour.",
            "leisure_youth_social",
        ),
        (
            (
                "Youth-led cinema at the harbour",
                "Six screenings chosen by the youth council; 1,100 visitors.",
            ),
            (
                "Story trail through the old town",
                "A four-kilometre trail with twelve story boards written by pupils and seniors.",
            ),
            ("A garden shared by seniors and pupils", ""),
        ),
        1,
    ),
}
# Reported once the round is open: each makes its city eligible, and nominated.
LATE_REPORTS = (
    (PLANNER, OVERDUE, "Five shop owners signed; the first two shops open to artists in June."),
    ("Ystad", PROGRESS["Ystad"].milestones[1][0], PROGRESS["Ystad"].milestones[1][1]),
)


def round_request(
    title: str, jurors: tuple[dict[str, str], ...] = JURORS, awards_count: int = AWARDS_COUNT
) -> dict[str, Any]:
    """The demo's award round: open for an hour, the BSR rule with one additional award."""
    return {
        "title": {"en": title},
        "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "criteria": [
            {
                "criterion_id": key,
                "name": {"en": name},
                "weight": weight,
                "scale_min": 0,
                "scale_max": 10,
            }
            for key, name, weight in CRITERIA
        ],
        "eligibility": {
            "plan_approved_required": True,
            "min_milestone_share": MIN_MILESTONE_SHARE,
        },
        "awards_count": awards_count,
        "per_country": PER_COUNTRY,
        "additional_award_allowed": True,
        "tight_margin": TIGHT_MARGIN,
        "normalise": False,
        "jurors": list(jurors),
    }


async def award_round(
    mentoring: Demo,
    awards: Demo,
    participants: dict[str, tuple[str, str]],
    pool: Pool,
) -> None:
    """Plans carried out, a round opened, nominations, conflicts, scores, the BSR rule."""
    say = awards.say
    ids = {city: pid for city, (pid, _) in participants.items()}
    city_of = {pid: city for city, pid in ids.items()}
    for city, progress in PROGRESS.items():
        pid, token = participants[city]
        await carry_out(mentoring, city, pid, token, progress, pool)
    expected = {ids[c]: p.reached for c, p in PROGRESS.items()} | {ids[PLANNER]: len(REPORTS)}
    await awards_knows(awards, expected)

    year = datetime.now(UTC).year
    title = f"BSR Cultural Pearls Award {year}"
    opened = await awards.request(
        "POST", "/rounds", expect=201, headers=awards.coordinator, json=round_request(title)
    )
    path = f"/rounds/{opened['round_id']}"
    say(
        f'> coordinator opened the award round "{title}": {AWARDS_COUNT} awards, at most'
        f" {PER_COUNTRY} per country, one additional award when the next score is within"
        f" {TIGHT_MARGIN:.2f} points; eligible: an approved action plan with"
        f" {MIN_MILESTONE_SHARE:.0%} of its milestones reached"
    )
    say("  jury: " + ", ".join(f"{j['name']} ({j['city_name']}, {j['country']})" for j in JURORS))
    at_once = sorted(city_of[pid] for pid in await nominees(awards, path))
    say(f"> nominated at once, eligible already ({opened['nominated']}): {', '.join(at_once)}")

    refused = await awards.client.post(
        f"{path}/nominations",
        headers=awards.coordinator,
        json={
            "participant_id": ids["Ystad"],
            "statement": "Ystad's youth council runs the harbour cinema on its own.",
        },
    )
    say(
        f"> coordinator nominated Ystad: refused, {refused.status_code} {_rule(refused)}"
        f" ({_message(refused)})"
    )
    for city, milestone, evidence in LATE_REPORTS:
        pid, token = participants[city]
        reached = await report(mentoring, pid, token, milestone, evidence)
        row = await wait_nominated(awards, path, pid)
        days = (datetime.now(UTC).date() - date.fromisoformat(reached["due_date"])).days
        late = f", {days} days after its due date" if days > 0 else ""
        say(
            f'> {city} reported "{milestone}" reached{late}: {row["milestones_reached"]} of'
            f" {row['milestones_total']} milestones, so the awards service nominated it by itself"
        )

    jurors = {j["juror_id"]: j for j in opened["juror_tokens"]}
    excluded = await awards.request(
        "GET", f"{path}/exclusions", expect=200, headers=awards.coordinator
    )
    say("> conflicts of interest, worked out by the awards service from the events:")
    for e in excluded:
        say(
            f"  {jurors[e['juror_id']]['name']} does not score {city_of[e['participant_id']]}:"
            f" {e['reason']} ({e['detail']})"
        )
    sheets = 0
    for juror in opened["juror_tokens"]:
        auth = {"Authorization": f"Bearer {juror['token']}"}
        for city, values in SCORES[juror["name"]].items():
            scored = await awards.client.put(
                f"{path}/nominees/{ids[city]}/scores",
                headers=auth,
                json={"scores": {key: v for (key, _, _), v in zip(CRITERIA, values, strict=True)}},
            )
            if scored.status_code == 200:
                sheets += 1
            elif scored.status_code == 403:
                say(
                    f"> {juror['name']} tried to score {city} anyway: refused,"
                    f" {scored.status_code} {_rule(scored)} ({_message(scored)})"
                )
            else:
                raise RuntimeError(f"scoring {city}: {scored.status_code} {scored.text}")
    say(
        f"> the jury scored: {sheets} score sheets from {len(JURORS)} jurors"
        f" ({', '.join(f'{k} x{w}' for k, _, w in CRITERIA)}; 0-10 each)"
    )

    preview = await awards.request("GET", f"{path}/result", expect=200, headers=awards.coordinator)
    say(
        f"> the {preview['status']} result: top scores win, at most {PER_COUNTRY} per country;"
        " every nominee with why:"
    )
    say_result(say, preview)
    winners = [w["participant_id"] for w in preview["winners"]]
    final = await awards.request(
        "POST",
        f"{path}/close",
        expect=200,
        headers=awards.coordinator,
        json={
            "citations": {ids[c]: text for c, text in CITATIONS.items() if ids[c] in winners},
            "grant_additional": True,
        },
    )
    if [w["participant_id"] for w in final["winners"]] != winners:
        raise RuntimeError(f"the final result differs from the preview: {final}")
    names = [city_of[pid] for pid in winners]
    say(
        f"> coordinator closed the round with the jury's citations: {', '.join(names[:-1])} and"
        f" {names[-1]} are the Baltic Sea cultural pearls {year}"
    )
    for pearl in await awards.request("GET", "/showcase.json", expect=200):
        say(f"  {pearl['city_name']} ({pearl['country']}): {pearl['url']}")


async def carry_out(
    mentoring: Demo, city: str, pid: str, token: str, progress: Progress, pool: Pool
) -> None:
    """A plan written with the applicant's token, approved by the mentor, partly reached."""
    applicant = {"Authorization": f"Bearer {token}"}
    path = f"/participants/{pid}/plan"
    me = await mentoring.request("GET", f"/participants/{pid}", expect=200, headers=applicant)
    mentor = pool[me["mentor"]["mentor_id"]]
    today = datetime.now(UTC).date()
    measure, description, theme = progress.measure
    draft = {
        "title": progress.title,
        "language": "en",
        "starts_on": (today - timedelta(days=90)).isoformat(),
        "ends_on": (today + timedelta(days=270)).isoformat(),
        "goals": [progress.goal],
        "measures": [
            {
                "title": measure,
                "description": description,
                "theme": theme,
                "responsible": "Culture office",
                "starts_on": (today - timedelta(days=90)).isoformat(),
                "ends_on": (today + timedelta(days=270)).isoformat(),
            }
        ],
        "milestones": [
            {"title": title, "due_date": (today + timedelta(days=30 * n)).isoformat()}
            for n, (title, _) in enumerate(progress.milestones, start=1)
        ],
    }
    plan = await mentoring.request("PUT", path, expect=200, headers=applicant, json=draft)
    await mentoring.request(
        "POST",
        f"{path}/reviews",
        expect=200,
        headers=mentor.auth,
        json={"revision": plan["current_revision"], "decision": "approve"},
    )
    for title, evidence in progress.milestones[: progress.reached]:
        await report(mentoring, pid, token, title, evidence)
    mentoring.say(
        f'> {city} carried out its plan "{progress.title}" (approved by {mentor.name}):'
        f" {progress.reached} of {len(progress.milestones)} milestones reached, with evidence"
    )


async def report(
    mentoring: Demo, pid: str, token: str, title: str, evidence: str
) -> dict[str, Any]:
    """A milestone reported reached, with its evidence; the milestone as it was planned."""
    applicant = {"Authorization": f"Bearer {token}"}
    path = f"/participants/{pid}/plan"
    plan = await mentoring.request("GET", path, expect=200, headers=applicant)
    milestone = next(m for m in plan["milestones"] if m["title"] == title)
    await mentoring.request(
        "POST",
        f"{path}/milestones/{milestone['milestone_id']}/reports",
        expect=201,
        headers=applicant,
        json={"note": evidence, "reached": True},
    )
    found: dict[str, Any] = milestone
    return found


async def awards_knows(awards: Demo, reached: dict[str, int]) -> None:
    """The awards service learns of plans only from events: wait until it has them all."""

    async def probe() -> tuple[bool | None, str]:
        rows = await awards.request(
            "GET", "/participants", expect=200, headers=awards.coordinator, params={"limit": 200}
        )
        seen = {
            r["participant_id"]: r["milestones_reached"]
            for r in rows
            if r["plan_status"] == "approved"
        }
        done = all(seen.get(pid) == n for pid, n in reached.items())
        return (True if done else None), ", ".join(
            f"{r['city_name']}: {r['plan_status']}, {r['milestones_reached']} reached" for r in rows
        )

    await wait_until("the awards service to see every plan's progress", probe)


async def nominees(awards: Demo, path: str) -> dict[str, dict[str, Any]]:
    rows = await awards.request("GET", f"{path}/nominees", expect=200, headers=awards.coordinator)
    return {r["participant_id"]: r for r in rows}


async def wait_nominated(awards: Demo, path: str, pid: str) -> dict[str, Any]:
    async def probe() -> tuple[dict[str, Any] | None, str]:
        found = await nominees(awards, path)
        return found.get(pid), ", ".join(str(r["city_name"]) for r in found.values())

    return await wait_until("the automatic nomination", probe)


def say_result(say: Callable[[str], None], result: dict[str, Any]) -> None:
    """Every nominee in the final order: its score, award or not, and the service's why."""
    winners = {w["participant_id"]: w for w in result["winners"]}
    others = {r["participant_id"]: r for r in result["runners_up"]}
    for s in result["standings"]:
        pid = s["participant_id"]
        if pid in winners:
            w = winners[pid]
            kind = "additional award" if w["additional_award"] else "award"
            outcome, why = f"{kind}, rank {w['rank']}", w["reason"]
        else:
            outcome, why = f"no award ({others[pid]['reason_code']})", others[pid]["reason"]
        say(
            f"  {s['position']}. {s['city_name']} ({s['country']}) {s['score']:.2f}"
            f" from {s['jurors']} jurors: {outcome}"
        )
        say(f"      why: {why}")


def _message(response: httpx.Response) -> str:
    try:
        return "; ".join(str(d["msg"]) for d in response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:120]


def _rule(response: httpx.Response) -> str:
    try:
        detail = response.json()["detail"]
        return ", ".join(f"{'.'.join(map(str, d['loc']))}: {d['type']}" for d in detail)
    except (ValueError, KeyError, TypeError):
        return response.text[:120]
