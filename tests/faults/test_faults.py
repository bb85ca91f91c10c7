"""The fault campaign: the whole system under a steady stream of submissions, hurt on
purpose, then checked for lost and duplicated effects (see campaign.py).

The short campaign runs in ``make test``: each service SIGKILLed and restarted five
times (in rounds: every service once per round, each at its own random moment, so
restarts overlap), Kafka and PostgreSQL restarted once, the SMTP sink away for 20 s, one
round of poison.
The full one (``make faults``) kills each service 20 times on a 3-node KRaft cluster
(replication 3, min.insync.replicas 2) and kills the leader of a busy partition
repeatedly, restarts PostgreSQL three times, takes the SMTP sink away for five minutes
and injects three rounds of poison; its table goes to bench/results/faults.md.
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from pearls_demo.system import System
from tests.e2e.mail import read_mail
from tests.e2e.running import ROOT, new_workdir
from tests.faults.campaign import (
    Chaos,
    Driver,
    FaultLog,
    Patient,
    Plan,
    Report,
    drive_while,
    settle,
)

pytestmark = pytest.mark.integration

SHORT = Plan(
    name="short",
    kills_per_service=5,
    broker_restarts=1,
    leader_kills=0,
    postgres_restarts=1,
    smtp_outage_s=20.0,
    poison_rounds=1,
)
FULL = Plan(
    name="full",
    kills_per_service=20,
    broker_restarts=1,
    leader_kills=10,
    postgres_restarts=3,
    smtp_outage_s=300.0,
    poison_rounds=3,
    kafka_nodes=3,
    pause_s=8.0,
    settle_s=900.0,
)


async def campaign(plan: Plan, seed: int) -> tuple[Report, str]:
    """Start the system, drive it while the faults happen, then measure; the report and
    its table."""
    workdir = new_workdir()
    run = uuid.uuid4().hex[:6]
    log = FaultLog(path=workdir / "faults.log")
    started = time.monotonic()
    async with System(
        workdir,
        say=log.note,
        kafka_nodes=plan.kafka_nodes,
        service_env=plan.service_env(),
    ) as system:
        async with (
            httpx.AsyncClient(base_url=system.urls["applications"], timeout=10.0) as a,
            httpx.AsyncClient(base_url=system.urls["mentoring"], timeout=10.0) as m,
        ):
            driver = Driver(
                Patient(a, system.coordinator_token, log),
                Patient(m, system.coordinator_token, log),
                plan,
                run,
            )
            await driver.add_mentors(0)
            chaos = Chaos(system, plan, run, log, random.Random(seed))
            await drive_while(driver, chaos.play)

            async def mails() -> list[EmailMessage]:
                return read_mail(system.mail_dir)

            report = await settle(system, plan, driver, chaos.poisons, log, started, mails)
            table = report.table(plan, log, driver, time.monotonic() - started)
    table += f"\n\nseed {seed}; what happened when:\n" + "\n".join(
        f"    {line}" for line in log.events
    )
    if report.settled:
        shutil.rmtree(workdir, ignore_errors=True)  # kept otherwise: logs/ says why
    else:
        table += f"\n\nlogs of the run: {workdir / 'logs'}"
    return report, table


def check(report: Report, table: str) -> None:
    assert report.lost == 0, table
    assert report.duplicated == 0, table
    # Every e-mail that came twice came under its delivery's own Message-ID: the window
    # between the SMTP server's 250 and the record of the send, as documented.
    assert report.duplicate_mails_other_id == 0 and report.unplanned_mails == 0, table
    assert not any(report.lag.values()), table
    assert report.poison_missing == 0, table


def show(table: str, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path.write_text(table + "\n", encoding="utf-8")
    with capsys.disabled():
        print(f"\n{table}\n(written to {path})")


@pytest.mark.timeout(600)  # about 3 minutes; room for a machine busy with other tests
async def test_short_fault_campaign_loses_and_duplicates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = random.randrange(1 << 32)
    report, table = await campaign(SHORT, seed)
    show(table, tmp_path / "faults.md", capsys)
    check(report, table)


@pytest.mark.faults_full
@pytest.mark.timeout(3600)
async def test_full_fault_campaign_loses_and_duplicates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = random.randrange(1 << 32)
    report, table = await campaign(FULL, seed)
    show(table, tmp_path / "faults.md", capsys)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    show(table, results / "faults.md", capsys)
    check(report, table)
