"""One city from its application to the award, through the public HTTP APIs only.

The journey the whole-system tests share, whether the system runs as local processes
(`make run-system`, tests/e2e/test_whole_system.py) or in containers
(`docker compose up`, tests/containers): a call, the city's application, reviews and
the decision; a mentor, the action plan, milestones; the award round, the jury and
the award; the public showcase. Then every e-mail of the run is read back from the
mail catcher and every event from the Pearls topics, decoded as a CloudEvent and
checked against the contract's models: each exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from pearls_demo.scenario import (
    CITIES,
    CRITERIA,
    JURORS,
    MENTORS,
    REVIEWERS,
    Demo,
    Progress,
    apply,
    awards_knows,
    call_request,
    carry_out,
    register_mentors,
    register_reviewers,
    review,
    round_request,
    wait_matched,
    wait_nominated,
    wait_until,
)
from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.outbox import service_source
from pearls_shared.testing import read_topic
from pearls_shared.topics import CONTRACT_TOPICS
from tests.e2e.mail import subject, subject_patterns, template, to

# Every e-mail the mail catcher holds now, oldest first.
MailSource = Callable[[], Awaitable[list[EmailMessage]]]

CITY = CITIES[0]  # Kuldīga, LV
REVIEWED_BY = REVIEWERS[:2]  # Aino Mets (EE) and Jonas Petraitis (LT): no conflict with LV
MENTOR = MENTORS[0]  # Rasa Jankauskienė: works in Latvian too
JURY = JURORS[1:]  # Birgit Lorenzen and Piotr Zieliński: neither mentored nor from Kuldīga
PLAN = Progress(
    "Culture keeps Kuldīga young",
    "Young people run a festival of their own",
    (
        "Youth festival board",
        "Eight pupils plan the summer festival with the culture office.",
        "culture_creative_industries",
    ),
    (
        ("Youth festival board formed", "Eight pupils meet every second Tuesday."),
        ("First empty shop opened for artists", "A ceramics studio; 140 visitors."),
        ("Summer festival run by the youth board", ""),
    ),
    2,
)
CITATION = "Kuldīga gave its young people a festival of their own."
COORDINATORS = "coordinators@bsr-cultural-pearls.example"  # notifications' default mailbox
INESE, RASA = CITY.email, MENTOR["email"]
BIRGIT, PIOTR = (j["email"] for j in JURY)
# Every e-mail this run causes, once per (template, recipient) unless counted otherwise.
EXPECTED_MAIL = Counter(
    {
        ("application_received", INESE): 1,
        ("call_closed", COORDINATORS): 1,  # review can begin
        ("application_accepted", INESE): 1,
        ("mentor_registered", RASA): 1,
        ("mentor_assigned", INESE): 1,
        ("mentee_assigned", RASA): 1,
        ("plan_submitted", RASA): 1,
        ("plan_approved", INESE): 1,
        ("milestone_reached", RASA): 2,  # two milestones, each its own subject
        ("award_jury_invited", BIRGIT): 1,
        ("award_jury_invited", PIOTR): 1,
        ("award_nominated", INESE): 1,
        ("award_granted", INESE): 1,
        ("award_round_closed", BIRGIT): 1,
        ("award_round_closed", PIOTR): 1,
        ("award_round_closed", COORDINATORS): 1,
    }
)
# Every event of this city's run, by type; each event id exactly once on its topic.
EXPECTED_EVENTS = Counter(
    {
        "pearls.call.opened": 1,
        "pearls.application.submitted": 1,
        "pearls.call.closed": 1,
        # Published once the call's required reviews are in (two), then for each later one.
        "pearls.application.reviewed": 1,
        "pearls.application.accepted": 1,
        "pearls.mentor.registered": 1,
        "pearls.mentor.assigned": 1,
        "pearls.plan.submitted": 1,
        "pearls.plan.approved": 1,
        "pearls.plan.milestone_reached": PLAN.reached,
        "pearls.award.round_opened": 1,
        "pearls.award.nominated": 1,
        "pearls.award.granted": 1,
        "pearls.award.round_closed": 1,
        "pearls.notification.sent": EXPECTED_MAIL.total(),
    }
)


@dataclass
class Apis:
    """The system as a client sees it: the three APIs the journey calls (with the
    coordinator's token), the public showcase and the Kafka address to read events at."""

    applications: Demo
    mentoring: Demo
    awards: Demo
    showcase: str
    bootstrap: str


@asynccontextmanager
async def connect(
    urls: dict[str, str], coordinator_token: str, *, showcase: str, bootstrap: str
) -> AsyncIterator[Apis]:
    """Clients for ``urls`` ("applications", "mentoring", "awards": base URLs)."""
    lines: list[str] = []  # what the demo's helpers would print; not needed here
    async with (
        httpx.AsyncClient(base_url=urls["applications"], timeout=30.0) as applications,
        httpx.AsyncClient(base_url=urls["mentoring"], timeout=30.0) as mentoring,
        httpx.AsyncClient(base_url=urls["awards"], timeout=30.0) as awards,
    ):
        yield Apis(
            Demo(applications, coordinator_token, lines.append),
            Demo(mentoring, coordinator_token, lines.append),
            Demo(awards, coordinator_token, lines.append),
            showcase,
            bootstrap,
        )


async def one_city_to_the_award(apis: Apis, mails: MailSource) -> None:
    """Drive one city through the public APIs; then check the showcase, every e-mail
    (once each, by template and recipient) and every event (once each, a valid
    CloudEvent of the contract)."""
    app, mentoring, awards = apis.applications, apis.mentoring, apis.awards
    correlation = f"e2e-{uuid.uuid4().hex[:8]}"

    # -- applications: a call, the city's application, reviews, the decision ------------
    now = datetime.now(UTC)
    call = await app.request(
        "POST", "/calls", expect=201, headers=app.coordinator, json=call_request(now, places=1)
    )
    receipt = await apply(app, call["call_id"], CITY, {"X-Correlation-ID": correlation})
    pid, token = receipt["application_id"], receipt["applicant_token"]
    await app.request(
        "POST", f"/calls/{call['call_id']}/close", expect=200, headers=app.coordinator
    )
    tokens = await register_reviewers(app, REVIEWED_BY)
    spread = await review(app, call["call_id"], tokens, {pid: CITY.quality})
    assert len(spread["assigned"]) == len(REVIEWED_BY) and not spread["refused"]
    # The mentor pool first, as a coordinator would: the matcher looks for a mentor
    # as soon as the city is accepted (and tells the coordinators when it finds none).
    pool = await register_mentors(mentoring, (MENTOR,))
    decided = await app.request(
        "POST",
        f"/applications/{pid}/decision",
        expect=200,
        headers=app.coordinator,
        json={"decision": "accept"},
    )
    assert decided["status"] == "accepted"

    # -- mentoring: a mentor matched, a plan approved, milestones reached ---------------
    [matched] = await wait_matched(mentoring, {pid})
    [mentor_id] = pool
    assert matched["mentor"]["mentor_id"] == mentor_id
    await carry_out(mentoring, CITY.name, pid, token, PLAN, pool)

    # -- awards: a round, the nomination, the jury's scores, the award ------------------
    await awards_knows(awards, {pid: PLAN.reached})  # it learns of plans from events only
    opened = await awards.request(
        "POST",
        "/rounds",
        expect=201,
        headers=awards.coordinator,
        json=round_request(f"BSR Cultural Pearls Award {now.year}", JURY, awards_count=1),
    )
    path = f"/rounds/{opened['round_id']}"
    nominee = await wait_nominated(awards, path, pid)  # eligible: the service nominates it
    assert (nominee["milestones_reached"], nominee["milestones_total"]) == (2, 3)
    for juror in opened["juror_tokens"]:
        await awards.request(
            "PUT",
            f"{path}/nominees/{pid}/scores",
            expect=200,
            headers={"Authorization": f"Bearer {juror['token']}"},
            json={"scores": {key: 9 for key, _, _ in CRITERIA}},
        )
    closed = await awards.request(
        "POST",
        f"{path}/close",
        expect=200,
        headers=awards.coordinator,
        json={"citations": {pid: {"en": CITATION}}, "grant_additional": False},
    )
    assert [w["participant_id"] for w in closed["winners"]] == [pid]

    # -- the public showcase: the page, its JSON and the pearl's own page ----------------
    showcase = apis.showcase
    pearls = (await awards.client.get(f"{showcase}.json")).json()
    [pearl] = [p for p in pearls if p["round_id"] == opened["round_id"]]
    assert (pearl["city_name"], pearl["country"], pearl["rank"]) == (CITY.name, CITY.country, 1)
    assert CITATION in json.dumps(pearl["citation"], ensure_ascii=False)
    page = await awards.client.get(showcase)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert CITY.name in page.text and pearl["url"] in page.text
    own = await awards.client.get(pearl["url"])
    assert own.status_code == 200 and CITATION in own.text
    feed = await awards.client.get(f"{showcase}/feed.atom")
    assert feed.status_code == 200 and pearl["url"] in feed.text

    # -- the e-mail at the sink: each expected one, exactly once ------------------------
    recipients = {address for _, address in EXPECTED_MAIL}
    patterns = subject_patterns()

    async def all_mail() -> tuple[list[Any] | None, str]:
        ours = [m for m in await mails() if to(m) in recipients]
        arrived = Counter((template(m, patterns), to(m)) for m in ours)
        missing = EXPECTED_MAIL - arrived
        return (ours if not missing else None), f"missing {sorted(missing.items())}"

    found_mail = await wait_until("every e-mail of the run at the sink", all_mail, within=120)
    assert Counter((template(m, patterns), to(m)) for m in found_mail) == EXPECTED_MAIL
    twice = [k for k, n in Counter((to(m), subject(m)) for m in found_mail).items() if n > 1]
    assert not twice, f"the same e-mail arrived twice: {twice}"
    assert len({m["Message-ID"] for m in found_mail}) == len(found_mail)

    # -- the events: every one of this run exactly once, each a valid CloudEvent ---------
    bootstrap = apis.bootstrap
    ours = {call["call_id"], pid, mentor_id, opened["round_id"]}

    async def all_events() -> tuple[list[tuple[str, CloudEvent]] | None, str]:
        found = await events_of(bootstrap, ours, recipients)
        seen = Counter(event.get_type() for _, event in found)
        missing = EXPECTED_EVENTS - seen
        return (found if not missing else None), f"missing {sorted(missing.items())}"

    events = await wait_until("every event of the run on the topics", all_events, within=60)
    assert Counter(event.get_type() for _, event in events) == EXPECTED_EVENTS
    ids = Counter(event.get_id() for _, event in events)
    assert [i for i, n in ids.items() if n > 1] == []
    for topic, event in events:
        model = EVENT_TYPES[event.get_type()]
        data = model.model_validate(data_of(event))  # the contract's model parses it
        assert topic == model.topic
        assert event.get_specversion() == "1.0"
        assert event.get_source() == service_source(model.producer)
        assert event.get_subject() == data.key()
        assert event.get_dataschema() == model.dataschema()
    [reviewed] = [e for _, e in events if e.get_type() == "pearls.application.reviewed"]
    assert data_of(reviewed)["review_count"] == len(REVIEWED_BY)
    # The correlation id of the submission travels with its event and with the mail it caused.
    [submitted] = [e for _, e in events if e.get_type() == "pearls.application.submitted"]
    assert submitted.get_extension("correlationid") == correlation
    [receipt_mail] = [
        e
        for _, e in events
        if e.get_type() == "pearls.notification.sent"
        and data_of(e)["cause_event_id"] == submitted.get_id()
    ]
    assert receipt_mail.get_extension("correlationid") == correlation
    # What the sink holds is what the notification events say was sent.
    sent = [data_of(e) for _, e in events if e.get_type() == "pearls.notification.sent"]
    assert sorted(d["message_id"] for d in sent) == sorted(str(m["Message-ID"]) for m in found_mail)


async def events_of(
    bootstrap: str, ids: set[str], recipients: set[str]
) -> list[tuple[str, CloudEvent]]:
    """Every event on the Pearls topics that belongs to the run: keyed by one of its ids
    or naming one in its data; for mail, caused by one of those events."""
    found: list[tuple[str, CloudEvent]] = []
    for topic in CONTRACT_TOPICS:
        for record in await read_topic(bootstrap, topic):
            event = from_binary(
                KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value),
                JSONFormat(),
                CloudEvent,
            )
            assert isinstance(event, CloudEvent)
            assert record.key == (event.get_subject() or "").encode()
            found.append((topic, event))
    causes = set()
    mine = []
    for topic, event in found:
        text = json.dumps(event.get_data())
        if event.get_subject() in ids or any(i in text for i in ids):
            mine.append((topic, event))
            causes.add(event.get_id())
    for topic, event in found:
        data = data_of(event)
        if data.get("cause_event_id") in causes:
            assert data["recipient"] in recipients, data
            mine.append((topic, event))
    return mine


def data_of(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    assert isinstance(data, dict), f"{event.get_type()}: data is not a JSON object: {data!r}"
    return data
