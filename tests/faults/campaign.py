"""A fault campaign against the whole system: submissions keep flowing while it is hurt.

A ``Driver`` submits applications through the public HTTP API (the demo's own
helpers: ``call_request``, ``apply``), closes each call and accepts them, so
that every accepted application flows through all four services: mentoring
makes a participant and matches a mentor, awards keeps a view, notifications
mails each person once. Meanwhile ``Chaos`` SIGKILLs the services at random
moments and restarts them, restarts Kafka (or, on three nodes, kills the leader
of a busy partition), restarts PostgreSQL, takes the SMTP sink away for a while
and injects poison messages. ``measure`` then looks at what every service's
database, the SMTP sink, the dead-letter topics and the consumer groups hold,
for the ids this run created only, and ``Report.table`` says it in one table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from pearls_demo.scenario import MENTORS, City, Demo, apply, call_request
from pearls_demo.system import SERVICES, System
from pearls_ops.dlq import dlq_topics, entries
from pearls_ops.kafka import group_lag
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import APPLICATIONS, AWARDS, MENTORING
from tests.e2e.mail import to

COORDINATORS = "coordinators@bsr-cultural-pearls.example"  # notifications' default mailbox
# The services' consumer groups (their settings' defaults) and the topics each reads.
GROUPS = {
    "mentoring": (APPLICATIONS,),
    "awards": (APPLICATIONS, MENTORING),
    "pearls-notifications": (APPLICATIONS, MENTORING, AWARDS),
}
COUNTRIES = (("LV", "lv"), ("EE", "et"), ("DE", "de"), ("SE", "sv"), ("PL", "pl"), ("FI", "fi"))
THEMES = ("culture_creative_industries", "leisure_youth_social")
MENTOR_CAPACITY = 50  # the most the mentoring API takes


@dataclass(frozen=True)
class Plan:
    """How hard a campaign hits, and for how long."""

    name: str
    kills_per_service: int
    broker_restarts: int  # every node down and up again
    leader_kills: int  # SIGKILL the leader of a busy partition (3 nodes only)
    postgres_restarts: int
    smtp_outage_s: float
    poison_rounds: int  # each: invalid JSON, an unknown type, invalid data, a failing handler
    kafka_nodes: int = 1
    # The stream: ``batch`` applications per call, a call every ``pause_s`` or so. Gentle
    # enough for the mail to keep up (the sender manages a few e-mails a second here).
    batch: int = 2
    pause_s: float = 5.0
    gap_s: tuple[float, float] = (1.0, 4.0)  # between two faults, at random
    settle_s: float = 180.0  # how long the effects may take to arrive after the last fault

    def service_env(self) -> dict[str, dict[str, str]]:
        # E-mail retries every few seconds (not the default 30 s doubling to an hour), and
        # enough of them to outlast the SMTP outage: the run sees the mail arrive.
        return {
            "notifications": {
                "PEARLS_NOTIFICATIONS_RETRY_BACKOFF_INITIAL_S": "1",
                "PEARLS_NOTIFICATIONS_RETRY_BACKOFF_MAX_S": "5",
                "PEARLS_NOTIFICATIONS_RETRY_MAX_ATTEMPTS": str(int(self.smtp_outage_s) + 60),
            }
        }


@dataclass
class Submission:
    city: City
    call_id: str
    application_id: str = ""
    accepted: bool = False


@dataclass
class FaultLog:
    kills: Counter[str] = field(default_factory=Counter)
    broker_restarts: int = 0
    leader_kills: list[str] = field(default_factory=list)  # "topic/partition: node n"
    postgres_restarts: int = 0
    smtp_outage_s: float = 0.0
    retried_requests: int = 0
    partitions: list[str] = field(default_factory=list)  # "service from network, n s"
    events: list[str] = field(default_factory=list)
    path: Path | None = None  # where each line goes too, as it happens

    def note(self, what: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {what}"
        self.events.append(line)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")


class Patient(Demo):
    """The demo's request helper, patient with a system under fire: a refused connection,
    a timeout or a 5xx is tried again until ``within`` seconds have passed. A 409 on a
    repeated request whose first attempt may have taken effect (``done_on_conflict``)
    means it did."""

    def __init__(self, client: httpx.AsyncClient, coordinator: str, log: FaultLog) -> None:
        super().__init__(client, coordinator, lambda _: None)
        self.log = log

    async def request(
        self,
        method: str,
        path: str,
        *,
        expect: int,
        headers: dict[str, str] | None = None,
        within: float = 180.0,
        done_on_conflict: bool = False,
        **kwargs: Any,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        tried = False
        while True:
            try:
                response = await self.client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                problem = repr(exc)
            else:
                if response.status_code == expect:
                    return response.json() if response.content else None
                if response.status_code == 409 and tried and done_on_conflict:
                    return None
                if response.status_code < 500:
                    raise RuntimeError(
                        f"{method} {path}: expected {expect}, got {response.status_code}:"
                        f" {response.text}"
                    )
                problem = f"{response.status_code} {response.text[:200]}"
            if loop.time() > deadline:
                raise RuntimeError(f"{method} {path}: still failing after {within:.0f}s: {problem}")
            tried = True
            self.log.retried_requests += 1
            await asyncio.sleep(0.5)


@dataclass
class Driver:
    """Calls of ``batch`` applications each, closed and every application accepted."""

    applications: Patient
    mentoring: Patient
    plan: Plan
    run: str
    submissions: list[Submission] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # closed ones
    mentors: list[str] = field(default_factory=list)  # e-mail addresses

    def _city(self, number: int) -> City:
        country, language = COUNTRIES[number % len(COUNTRIES)]
        return City(
            f"Faultby {self.run} {number}",
            country,
            12_000 + number,
            f"Contact {number}",
            f"c{number}.{self.run}@faults.example",
            language,
            THEMES,
            3,
        )

    async def add_mentors(self, needed: int) -> None:
        """Mentors enough for ``needed`` participants (plus a margin), English-speaking."""
        while MENTOR_CAPACITY * len(self.mentors) < needed + 2 * self.plan.batch:
            email = f"mentor{len(self.mentors)}.{self.run}@faults.example"
            body = {
                **MENTORS[1],
                "name": f"Mentor {len(self.mentors)} {self.run}",
                "email": email,
                "languages": ["en", "de", "lv", "et", "sv", "pl", "fi"],
                "capacity": MENTOR_CAPACITY,
                "themes": list(THEMES),
            }
            # A repeated registration after a lost answer is refused (one mentor per
            # e-mail address): the first one counts.
            await self.mentoring.request(
                "POST",
                "/mentors",
                expect=201,
                headers=self.mentoring.coordinator,
                json=body,
                done_on_conflict=True,
            )
            self.mentors.append(email)

    async def run_until(self, stop: asyncio.Event) -> None:
        app = self.applications
        while not stop.is_set():
            await self.add_mentors(len(self.submissions) + self.plan.batch)
            call = await app.request(
                "POST",
                "/calls",
                expect=201,
                headers=app.coordinator,
                json=call_request(datetime.now(UTC), places=self.plan.batch),
            )
            batch = []
            for _ in range(self.plan.batch):
                number = len(self.submissions)
                sub = Submission(self._city(number), call["call_id"])
                self.submissions.append(sub)
                batch.append(sub)
                key = {"Idempotency-Key": f"faults-{self.run}-{number}"}
                receipt = await apply(app, call["call_id"], sub.city, key)
                sub.application_id = receipt["application_id"]
            await app.request(
                "POST",
                f"/calls/{call['call_id']}/close",
                expect=200,
                headers=app.coordinator,
                done_on_conflict=True,
            )
            self.calls.append(call["call_id"])
            for sub in batch:
                await app.request(
                    "POST",
                    f"/applications/{sub.application_id}/decision",
                    expect=200,
                    headers=app.coordinator,
                    json={"decision": "accept"},
                    done_on_conflict=True,
                )
                sub.accepted = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.plan.pause_s)

    @property
    def accepted(self) -> dict[str, Submission]:
        return {s.application_id: s for s in self.submissions if s.accepted}


async def drive_while(driver: Driver, play: Callable[[], Awaitable[None]]) -> None:
    """Keep the driver submitting while ``play`` hurts the system, and stop it once the
    faults are over; a driver that fails fails the run at once (the faults cancelled)."""
    stop = asyncio.Event()
    driving = asyncio.create_task(driver.run_until(stop))
    hurting = asyncio.create_task(play())
    await asyncio.wait({driving, hurting}, return_when=asyncio.FIRST_COMPLETED)
    if driving.done() and not hurting.done():
        hurting.cancel()  # the driver failed: its error is the test's
        await asyncio.gather(hurting, return_exceptions=True)
        driving.result()
    stop.set()
    await hurting
    await driving


# -- poison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    key: str  # the record's key: how its dead letters are found
    kind: str
    topic: str
    expected_reason: str
    # Who must dead-letter it: every consumer of the topic, or (None) whichever handler
    # fails on it; the others handle it.
    consumers: tuple[str, ...] | None


POISON_KINDS = {
    # kind: the reason every consumer of the topic gives when it dead-letters it
    "invalid JSON": "undecodable",
    "unknown event type": "unknown_type",
    "invalid data": "invalid_data",
    "handler fails": "handler_failed",
}


async def inject_poison(bootstrap: str, run: str, round_: int) -> list[Poison]:
    """Four records on the applications topic, read by mentoring, awards and notifications."""
    accepted = sample("pearls.application.accepted")
    records: list[tuple[Poison, bytes, list[tuple[str, bytes]]]] = []
    for kind, reason in POISON_KINDS.items():
        key = f"poison-{run}-{round_}-{kind.replace(' ', '-')}"
        base = envelope_for(accepted, correlation_id=key)
        data = dict(base.data)
        data["application_id"] = str(uuid.uuid4())
        envelope = dataclasses.replace(base, id=str(uuid.uuid4()), data=data)
        value = envelope.value()
        if kind == "invalid JSON":
            value = value[: len(value) // 2]
        elif kind == "unknown event type":
            envelope = dataclasses.replace(envelope, type="pearls.city.moved")
        elif kind == "invalid data":
            data = {**data, "population": "many", "country": "Atlantis"}
            envelope = dataclasses.replace(envelope, data=data)
            value = envelope.value()
        else:
            # Valid by the contract (a name is any text), yet PostgreSQL stores no NUL
            # character: the handlers that keep the city's name fail every attempt.
            data = {**data, "city_name": "Nul\x00town"}
            envelope = dataclasses.replace(envelope, data=data)
            value = envelope.value()
        every = tuple(g for g, topics in GROUPS.items() if APPLICATIONS in topics)
        poison = Poison(key, kind, APPLICATIONS, reason, None if kind == "handler fails" else every)
        records.append((poison, value, envelope.headers()))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for poison, value, headers in records:
            await producer.send_and_wait(
                poison.topic, value=value, key=poison.key.encode(), headers=headers
            )
    finally:
        await producer.stop()
    return [p for p, _, _ in records]


# -- faults -----------------------------------------------------------------------------


@dataclass
class Chaos:
    system: System
    plan: Plan
    run: str
    log: FaultLog
    rng: random.Random
    poisons: list[Poison] = field(default_factory=list)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.plan.gap_s))

    async def kill(self, name: str) -> None:
        self.log.note(f"SIGKILL {name}")
        await self.system.restart_service(name, kill=True)
        self.log.kills[name] += 1
        self.log.note(f"{name} ready again")

    async def kill_round(self) -> None:
        """Every service SIGKILLed once, each at its own random moment of the round: their
        restarts overlap, as when a node that runs several of them goes down."""

        async def later(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            await self.kill(name)

        low, high = self.plan.gap_s
        await asyncio.gather(
            *(
                later(name, self.rng.uniform(0.0, high))
                for name in self.rng.sample(SERVICES, len(SERVICES))
            )
        )
        await asyncio.sleep(self.rng.uniform(low, high))

    async def poison(self, round_: int) -> None:
        self.poisons += await inject_poison(self.system.bootstrap_servers, self.run, round_)
        self.log.note(f"poison round {round_}: {len(POISON_KINDS)} records")

    async def restart_broker(self) -> None:
        self.log.note("Kafka restart")
        await self.system.restart_kafka(kill=True)
        self.log.broker_restarts += 1
        self.log.note("Kafka back")

    async def restart_postgres(self) -> None:
        self.log.note("PostgreSQL restart")
        await self.system.restart_postgres(down_s=self.rng.uniform(2.0, 5.0))
        self.log.postgres_restarts += 1
        self.log.note("PostgreSQL back")

    async def kill_leader(self) -> None:
        """SIGKILL the broker leading a partition of the applications topic (the busiest),
        a few seconds later start it again on its data."""
        topic = APPLICATIONS
        admin = AIOKafkaAdminClient(bootstrap_servers=self.system.bootstrap_servers)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        partition = self.rng.choice(described["partitions"])
        leader = int(partition["leader"])
        kafka = self.system.kafka
        self.log.note(f"SIGKILL Kafka node {leader}, leader of {topic}/{partition['partition']}")
        await asyncio.to_thread(kafka.stop_node, leader, kill=True)
        await asyncio.sleep(self.rng.uniform(3.0, 8.0))
        await asyncio.to_thread(kafka.start_node, leader)
        self.log.leader_kills.append(f"{topic}/{partition['partition']}: node {leader}")
        self.log.note(f"Kafka node {leader} back")

    async def smtp_outage(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.plan.gap_s))
        self.log.note("SMTP sink away")
        await self.system.stop_sink()
        started = time.monotonic()
        await asyncio.sleep(self.plan.smtp_outage_s)
        await self.system.start_sink()
        self.log.smtp_outage_s = time.monotonic() - started
        self.log.note("SMTP sink back")

    async def play(self) -> None:
        """Kill rounds (every service once, at random moments), with the broker, PostgreSQL,
        leader kills and poison between them; the SMTP outage runs alongside."""
        outage = asyncio.create_task(self.smtp_outage())
        rounds = self.plan.kills_per_service
        # Which round each other fault follows (spread over the run).
        after: dict[int, list[Callable[[], Awaitable[None]]]] = defaultdict(list)
        for i in range(self.plan.broker_restarts):
            after[(i * rounds) // max(1, self.plan.broker_restarts)].append(self.restart_broker)
        for i in range(self.plan.postgres_restarts):
            spot = ((2 * i + 1) * rounds) // (2 * max(1, self.plan.postgres_restarts))
            after[spot].append(self.restart_postgres)
        for i in range(self.plan.leader_kills):
            after[(i * rounds) // max(1, self.plan.leader_kills)].append(self.kill_leader)
        for i in range(self.plan.poison_rounds):
            spot = (i * rounds) // max(1, self.plan.poison_rounds)
            after[spot].append(lambda i=i: self.poison(i))  # type: ignore[misc]
        try:
            for round_ in range(rounds):
                for fault in after[round_]:
                    await self.pause()
                    await fault()
                await self.kill_round()
            await outage
        finally:
            if not outage.done():
                outage.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await outage
                assert self.system.sink is not None
                if not self.system.sink.alive():
                    await self.system.start_sink()


# -- what the run finds -----------------------------------------------------------------


@dataclass
class Row:
    check: str
    expected: int
    found: int
    lost: int
    duplicated: int
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    duplicate_mails: int = 0  # the same Message-ID more than once at the sink
    duplicate_mails_other_id: int = 0  # the same delivery under different Message-IDs
    unplanned_mails: int = 0  # mail to the run's people that no delivery row planned
    lag: dict[str, int] = field(default_factory=dict)
    poison_rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    poison_missing: int = 0

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    @property
    def duplicated(self) -> int:
        return sum(r.duplicated for r in self.rows)

    @property
    def settled(self) -> bool:
        return (
            self.lost == 0
            and not any(self.lag.values())
            and self.poison_missing == 0
            and all(r.found >= r.expected for r in self.rows)
        )

    def table(self, plan: Plan, log: FaultLog, driver: Driver, took: float) -> str:
        kills = ", ".join(f"{n} {log.kills[n]}" for n in SERVICES)
        lines = [
            f"Fault campaign ({plan.name}): {len(driver.submissions)} submissions,"
            f" {len(driver.accepted)} accepted, {len(driver.calls)} calls,"
            f" {len(driver.mentors)} mentors, in {took:.0f} s",
            "",
            f"Faults: SIGKILL + restart: {kills};"
            f" broker restarts {log.broker_restarts};"
            f" leader kills {len(log.leader_kills)};"
            f" PostgreSQL restarts {log.postgres_restarts};"
            f" SMTP sink away {log.smtp_outage_s:.0f} s;"
            f" poison records {len(self.poison_rows)};"
            + (f" network partitions: {', '.join(log.partitions)};" if log.partitions else "")
            + f" HTTP requests retried {log.retried_requests}",
            "",
            "| check | expected | found | lost | duplicated | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.check} | {r.expected} | {r.found} | {r.lost} | {r.duplicated} | {r.note} |"
            )
        lag = ", ".join(f"{g} {n}" for g, n in self.lag.items())
        total_lag = sum(self.lag.values())
        lines.append(f"| consumer lag ({lag}) | 0 | {total_lag} | | | |")
        lines += [
            "",
            "| poison | topic | dead-lettered by (consumer: reason) | expected reason |",
            "|---|---|---|---|",
            *(f"| {k} | {t} | {found} | {want} |" for k, t, found, want in self.poison_rows),
            "",
            f"lost effects: {self.lost}; duplicated effects: {self.duplicated};"
            f" duplicate e-mails: {self.duplicate_mails} (same Message-ID: the window after"
            f" the SMTP server's 250), {self.duplicate_mails_other_id} under another"
            f" Message-ID; e-mails nobody planned: {self.unplanned_mails}",
        ]
        return "\n".join(lines)


def _split(expected: set[str], found: Counter[str]) -> tuple[int, int, int]:
    """(found, lost, duplicated) of ``expected`` keys in ``found`` counts."""
    present = sum(1 for k in expected if found[k] >= 1)
    duplicated = sum(found[k] - 1 for k in expected if found[k] > 1)
    return present, len(expected) - present, duplicated


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


class Observed(Protocol):
    """What ``measure`` reads: each service's database, the broker, a folder for the
    latest table; the system of local processes and the compose one both have them."""

    @property
    def dsns(self) -> Mapping[str, str]: ...

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def workdir(self) -> Path: ...


# Every e-mail the mail catcher holds now.
MailSource = Callable[[], Awaitable[list[EmailMessage]]]


async def measure(
    system: Observed, driver: Driver, poisons: list[Poison], mails: MailSource
) -> Report:
    report = Report()
    accepted = driver.accepted
    ids = list(accepted)
    uuids = [uuid.UUID(i) for i in ids]
    calls = [uuid.UUID(c) for c in {s.call_id for s in driver.submissions}]

    # applications: one row per submission, accepted ones accepted.
    rows = await _fetch(
        system.dsns["applications"],
        "SELECT application_id::text AS id, city_name, status FROM applications"
        " WHERE call_id = ANY($1::uuid[])",
        calls,
    )
    by_city = Counter(r["city_name"] for r in rows)
    submitted = {s.city.name for s in driver.submissions if s.application_id}
    found, lost, dup = _split(submitted, by_city)
    report.rows.append(
        Row("applications: one application per submission", len(submitted), found, lost, dup)
    )
    status = {r["id"]: r["status"] for r in rows}
    ok = Counter(i for i in ids if status.get(i) == "accepted")
    found, lost, dup = _split(set(ids), ok)
    report.rows.append(Row("applications: accepted", len(ids), found, lost, dup))

    # mentoring: one participant, one mentor assignment each.
    dsn = system.dsns["mentoring"]
    rows = await _fetch(
        dsn,
        "SELECT participant_id::text AS id FROM participants"
        " WHERE participant_id = ANY($1::uuid[]) AND status = 'active'",
        uuids,
    )
    found, lost, dup = _split(set(ids), Counter(r["id"] for r in rows))
    report.rows.append(Row("mentoring: participant", len(ids), found, lost, dup))
    rows = await _fetch(
        dsn,
        "SELECT a.participant_id::text AS id, a.ended_at IS NULL AS current, m.email"
        " FROM assignments a JOIN mentors m USING (mentor_id)"
        " WHERE a.participant_id = ANY($1::uuid[])",
        uuids,
    )
    assignments = Counter(r["id"] for r in rows)
    mentor_of = {r["id"]: r["email"] for r in rows if r["current"]}
    found, lost, dup = _split(set(ids), assignments)
    ended = sum(1 for r in rows if not r["current"])
    report.rows.append(
        Row("mentoring: mentor assignment", len(ids), found, lost, dup, f"{ended} ended")
    )

    # awards: one view row each, knowing its mentor.
    rows = await _fetch(
        system.dsns["awards"],
        "SELECT participant_id::text AS id, accepted_at IS NOT NULL AS accepted,"
        " (SELECT count(*) FROM jsonb_object_keys(mentors)) AS mentors"
        " FROM participants WHERE participant_id = ANY($1::uuid[])",
        uuids,
    )
    views = Counter(r["id"] for r in rows if r["accepted"])
    found, lost, dup = _split(set(ids), views)
    report.rows.append(Row("awards: participant view", len(ids), found, lost, dup))
    knows = Counter({r["id"]: int(r["mentors"]) for r in rows})
    found, lost, dup = _split(set(ids), knows)
    report.rows.append(Row("awards: view knows the mentor", len(ids), found, lost, dup))

    # notifications: one delivery per (event, recipient), each sent.
    people = {s.city.email for s in accepted.values()}
    recipients = sorted(people | set(driver.mentors) | {COORDINATORS})
    rows = await _fetch(
        system.dsns["notifications"],
        "SELECT recipient, template, status, message_id, context->>'participant_id' AS pid,"
        " context->>'call_id' AS call_id FROM deliveries WHERE recipient = ANY($1::text[])",
        recipients,
    )
    email_of = {s.city.email: i for i, s in accepted.items()}
    planned: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    ours_ids: set[str] = set()
    other: Counter[str] = Counter()
    closed = set(driver.calls)
    for r in rows:
        if r["recipient"] in email_of and r["template"] in (
            "application_received",
            "application_accepted",
            "mentor_assigned",
        ):
            key = f"{r['template']} {email_of[r['recipient']]}"
        elif r["template"] == "mentee_assigned" and r["pid"] in accepted:
            key = f"mentee_assigned {r['pid']} {r['recipient']}"
        elif r["template"] == "call_closed" and r["call_id"] in closed:
            key = f"call_closed {r['call_id']}"
        elif r["template"] == "mentor_registered" and r["recipient"] in driver.mentors:
            key = f"mentor_registered {r['recipient']}"
        else:
            other[r["template"]] += 1
            continue
        planned[key] += 1
        ours_ids.add(r["message_id"])
        if r["status"] == "sent":
            sent[key] += 1
    expected = {
        *(f"{t} {i}" for i in ids for t in ("application_received", "application_accepted")),
        *(f"mentor_assigned {i}" for i in ids),
        *(f"mentee_assigned {i} {mentor_of.get(i, '?')}" for i in ids),
        *(f"call_closed {c}" for c in closed),
        *(f"mentor_registered {m}" for m in driver.mentors),
    }
    found, lost, dup = _split(expected, planned)
    note = "other: " + ", ".join(f"{t} {n}" for t, n in other.items()) if other else ""
    report.rows.append(
        Row("notifications: delivery planned", len(expected), found, lost, dup, note)
    )
    found, lost, dup = _split(expected, sent)
    report.rows.append(Row("notifications: delivery sent", len(expected), found, lost, dup))

    # the sink: every planned e-mail arrived; the same Message-ID twice is the window.
    caught = [m for m in await mails() if to(m) in recipients]
    by_id = Counter(str(m["Message-ID"]) for m in caught)
    sent_ids = {
        r["message_id"] for r in rows if r["message_id"] in ours_ids and r["status"] == "sent"
    }
    found, lost, _ = _split(sent_ids, by_id)
    report.duplicate_mails = sum(n - 1 for n in by_id.values() if n > 1)
    report.unplanned_mails = sum(n for mid, n in by_id.items() if mid not in ours_ids)
    report.rows.append(
        Row(
            "SMTP sink: e-mail per sent delivery",
            len(sent_ids),
            found,
            lost,
            0,
            f"{report.duplicate_mails} repeated with the same Message-ID",
        )
    )
    # The same (template, recipient, participant) under two Message-IDs is a duplicate
    # nobody can explain by the window; the planned-delivery row above counts those.
    report.duplicate_mails_other_id = sum(n - 1 for n in planned.values() if n > 1)

    # consumer groups: caught up.
    settings = KafkaSettings(bootstrap_servers=system.bootstrap_servers)
    for group, topics in GROUPS.items():
        lags = await group_lag(settings, group, topics)
        report.lag[group] = sum(lag.lag for lag in lags)

    # dead letters: every poison record, from every consumer of its topic, with its reason.
    letters: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, set[str]] = defaultdict(set)
    by: dict[str, set[str]] = defaultdict(set)
    for entry in await entries(settings, dlq_topics(settings)):
        key = (entry.key or b"").decode(errors="replace")
        if key.startswith("poison-"):
            letters[key].append(f"{entry.dlq('consumer')}: {entry.reason}")
            reasons[key].add(entry.reason)
            by[key].add(entry.dlq("consumer"))
    for poison in poisons:
        found_here = letters.get(poison.key, [])
        if (
            not found_here
            or reasons[poison.key] != {poison.expected_reason}
            or (poison.consumers is not None and by[poison.key] != set(poison.consumers))
        ):
            report.poison_missing += 1
        report.poison_rows.append(
            (
                poison.kind,
                poison.topic,
                "; ".join(sorted(found_here)) or "(none)",
                poison.expected_reason,
            )
        )
    return report


async def settle(
    system: Observed,
    plan: Plan,
    driver: Driver,
    poisons: list[Poison],
    log: FaultLog,
    since: float,
    mails: MailSource,
) -> Report:
    """Measure until everything expected has arrived and the groups caught up (or
    ``plan.settle_s`` is up: then the last measure, which says what is missing).
    The latest measure is in ``faults-now.md`` of the system's work directory."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    log.note(f"settling: {len(driver.accepted)} accepted applications")
    while True:
        report = await measure(system, driver, poisons, mails)
        now = report.table(plan, log, driver, time.monotonic() - since)
        (system.workdir / "faults-now.md").write_text(now, encoding="utf-8")
        if report.settled or loop.time() > started + plan.settle_s:
            log.note("settled" if report.settled else "gave up settling")
            return report
        await asyncio.sleep(3.0)
