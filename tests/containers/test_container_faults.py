"""The fault campaign at container level: the compose system under a steady stream of
submissions (the campaign's own ``Driver``, through the published ports), hurt as an
operator's host hurts it, then measured with the campaign's own ``measure`` (what every
service's database, Mailpit, the dead-letter topics and the consumer groups hold, for
the ids this run created only):

* every service container killed, twice, at random moments of each round: half the
  kills SIGKILL the container's process from the host (a crash: the restart policy
  brings it back), half are ``docker kill`` followed by ``docker compose start`` (to
  Docker's restart policy a kill is a manual stop);
* a PostgreSQL container restarted (``docker restart``), two of them in turn;
* network partitions longer than the consumer session timeout (10 s): a service cut
  off from Kafka (``docker network disconnect`` from the bus) and a service cut off from
  its database, then connected again;
* one round of poison records on the applications topic.

Afterwards: 0 lost, 0 duplicated effects, every consumer group caught up, every poison
record dead-lettered with its reason; the same table as ``make faults``
(bench/results/faults-containers.md has the latest).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.containers.stack import (
    COORDINATOR_TOKEN,
    FAULTS_FILE,
    ROOT,
    SERVICES,
    ComposeStack,
    Mailpit,
)
from tests.faults.campaign import (
    POISON_KINDS,
    Driver,
    FaultLog,
    Patient,
    Plan,
    Poison,
    Report,
    drive_while,
    inject_poison,
    settle,
)
from tests.faults.test_faults import check

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.timeout(1200)]

PLAN = Plan(
    name="containers",
    kills_per_service=2,
    broker_restarts=0,
    leader_kills=0,
    postgres_restarts=2,
    smtp_outage_s=0.0,
    poison_rounds=1,
    settle_s=240.0,
)
# Each: (service, network it is cut off from); 15 s, past the 10 s session timeout.
PARTITIONS = (
    ("mentoring", "bus"),
    ("notifications", "bus"),
    ("awards", "awards-db"),
    ("applications", "applications-db"),
)
PARTITION_S = 15.0


@dataclass
class ComposeObserved:
    """What ``measure`` reads, from the compose system."""

    stack: ComposeStack
    workdir: Path

    @property
    def dsns(self) -> Mapping[str, str]:
        return {s: self.stack.dsn(s) for s in SERVICES}

    @property
    def bootstrap_servers(self) -> str:
        return self.stack.bootstrap_servers


@dataclass
class ContainerChaos:
    stack: ComposeStack
    run: str
    log: FaultLog
    rng: random.Random
    poisons: list[Poison] = field(default_factory=list)

    async def _blocking(self, what: str, *args: str) -> None:
        await asyncio.to_thread(getattr(self.stack, what), *args)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*PLAN.gap_s))

    async def kill(self, service: str, crash: bool) -> None:
        if crash:
            self.log.note(f"SIGKILL {service}'s process (restart policy)")
            await self._blocking("kill_process", service)
        else:
            self.log.note(f"docker kill {service}, then docker compose start")
            await self._blocking("docker_kill", service)
            await self._blocking("start", service)
        await asyncio.sleep(1.0)  # the engine notices the exit before we ask for health
        await self._blocking("wait_healthy", service)
        self.log.kills[service] += 1
        self.log.note(f"{service} healthy again")

    async def kill_round(self, round_: int) -> None:
        async def later(service: str, delay: float, crash: bool) -> None:
            await asyncio.sleep(delay)
            await self.kill(service, crash)

        await asyncio.gather(
            *(
                later(s, self.rng.uniform(0.0, PLAN.gap_s[1]), (round_ + i) % 2 == 0)
                for i, s in enumerate(self.rng.sample(SERVICES, len(SERVICES)))
            )
        )

    async def restart_postgres(self, service: str) -> None:
        self.log.note(f"docker restart {service}-db")
        await self._blocking("restart", f"{service}-db")
        await self._blocking("wait_healthy", f"{service}-db")
        self.log.postgres_restarts += 1
        self.log.note(f"{service}-db back")

    async def partition(self, service: str, network: str) -> None:
        self.log.note(f"{service} cut off from {network}")
        await self._blocking("disconnect", service, network)
        started = time.monotonic()
        await asyncio.sleep(PARTITION_S)
        await self._blocking("connect", service, network)
        took = time.monotonic() - started
        self.log.partitions.append(f"{service} from {network} {took:.0f} s")
        self.log.note(f"{service} connected to {network} again")

    async def poison(self) -> None:
        self.poisons += await inject_poison(self.stack.bootstrap_servers, self.run, 0)
        self.log.note(f"poison: {len(POISON_KINDS)} records")

    async def play(self) -> None:
        databases = self.rng.sample(SERVICES, PLAN.postgres_restarts)
        partitions = list(PARTITIONS)
        self.rng.shuffle(partitions)
        between = [
            [self.poison, lambda: self.restart_postgres(databases[0])],
            [lambda: self.restart_postgres(databases[1])],
        ]
        for round_ in range(PLAN.kills_per_service):
            for fault in between[round_]:
                await self.pause()
                await fault()
            await self.kill_round(round_)
            for service, network in partitions[2 * round_ : 2 * round_ + 2]:
                await self.pause()
                await self.partition(service, network)


@pytest.fixture(scope="module")
def stack(docker_engine: None) -> Iterator[ComposeStack]:
    stack = ComposeStack("faults", extra_files=(FAULTS_FILE,))
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


async def test_container_faults_lose_and_duplicate_nothing(
    stack: ComposeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = random.randrange(1 << 32)
    run = uuid.uuid4().hex[:6]
    log = FaultLog(path=tmp_path / "faults.log")
    started = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=stack.url("applications"), timeout=10.0) as a,
        httpx.AsyncClient(base_url=stack.url("mentoring"), timeout=10.0) as m,
    ):
        driver = Driver(
            Patient(a, COORDINATOR_TOKEN, log), Patient(m, COORDINATOR_TOKEN, log), PLAN, run
        )
        await driver.add_mentors(0)
        chaos = ContainerChaos(stack, run, log, random.Random(seed))
        await drive_while(driver, chaos.play)
    mailpit = Mailpit(stack.url("mailpit"))
    observed = ComposeObserved(stack, tmp_path)
    report: Report = await settle(
        observed, PLAN, driver, chaos.poisons, log, started, mailpit.messages
    )
    table = report.table(PLAN, log, driver, time.monotonic() - started)
    table += f"\n\nseed {seed}; what happened when:\n" + "\n".join(f"    {e}" for e in log.events)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    for path in (tmp_path / "faults.md", results / "faults-containers.md"):
        path.write_text(table + "\n", encoding="utf-8")
    with capsys.disabled():
        print(f"\n{table}\n")
    check(report, table)
    assert sum(log.kills.values()) == PLAN.kills_per_service * len(SERVICES), table
    assert log.postgres_restarts == PLAN.postgres_restarts and len(log.partitions) == 4, table
