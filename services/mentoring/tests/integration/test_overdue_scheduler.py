"""The overdue scheduler emits each overdue event exactly once: killed, restarted, doubled."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pearls_mentoring.config import MIGRATIONS_DIR
from pearls_shared.runtime import prepare_database

pytestmark = pytest.mark.integration

PROGRAM = Path(__file__).with_name("overdue_program.py")
TODAY = date(2031, 5, 1)


async def seed(dsn: str, plans: int, per_plan: int) -> set[uuid.UUID]:
    """Approved plans whose milestones are all past due on TODAY."""
    await prepare_database(dsn, MIGRATIONS_DIR)
    conn = await asyncpg.connect(dsn)
    milestones: set[uuid.UUID] = set()
    try:
        for i in range(plans):
            pid, plan_id = uuid.uuid4(), uuid.uuid4()
            contacts = [
                {"name": "Inese", "email": f"p{i}@example.org", "language": "lv", "role": "primary"}
            ]
            await conn.execute(
                "INSERT INTO participants (participant_id, status, city_name, city_key, country,"
                " contacts, themes, languages, accepted_at) VALUES"
                " ($1, 'active', $2, $2, 'LV', $3::text::jsonb, '{culture}', '{lv}', now())",
                pid,
                f"city {i}",
                json.dumps(contacts),
            )
            await conn.execute(
                "INSERT INTO plans (plan_id, participant_id, status, current_revision,"
                " approved_revision, created_at, updated_at)"
                " VALUES ($1, $2, 'approved', 1, 1, now(), now())",
                plan_id,
                pid,
            )
            for j in range(per_plan):
                mid = uuid.uuid4()
                milestones.add(mid)
                await conn.execute(
                    "INSERT INTO milestones (milestone_id, plan_id, position, title, due_date)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    mid,
                    plan_id,
                    j,
                    f"milestone {j}",
                    TODAY - timedelta(days=1 + j),
                )
    finally:
        await conn.close()
    return milestones


async def overdue_events(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb -> 'milestone' ->> 'milestone_id' AS m"
            ' FROM outbox WHERE headers @> \'[["ce_type", "pearls.plan.milestone_overdue"]]\''
        )
    finally:
        await conn.close()
    return [r["m"] for r in rows]


def start(dsn: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(PROGRAM), "--dsn", dsn, "--today", TODAY.isoformat(), *extra],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def until_all(dsn: str, wanted: int, within: float = 60) -> list[str]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await overdue_events(dsn)
        if len(set(found)) >= wanted or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_killed_and_restarted_scheduler_emits_each_event_once(
    postgres_server: Any, tmp_path: Path
) -> None:
    dsn = postgres_server.new_database("overdue")
    wanted = await seed(dsn, plans=12, per_plan=5)
    log = tmp_path / "scheduler.log"
    rng = random.Random(7)
    # First life: dies inside the transaction of its 4th milestone (event written, no commit).
    first = start(dsn, log, "--die-in-transaction", "4")
    assert await asyncio.to_thread(first.wait, 60) == -signal.SIGKILL
    assert len(await overdue_events(dsn)) == 3
    # Then five lives killed from outside at random moments, each restarted.
    for _ in range(5):
        life = start(dsn, log, "--pause", "0.02")
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        life.kill()
        await asyncio.to_thread(life.wait, 30)
    last = start(dsn, log)
    try:
        found = await until_all(dsn, len(wanted))
        await asyncio.sleep(0.5)  # anything doubled would show now
        found = await overdue_events(dsn)
    finally:
        stop(last)
    assert sorted(found) == sorted(str(m) for m in wanted), log.read_text()[-2000:]
    conn = await asyncpg.connect(dsn)
    try:
        unmarked = await conn.fetchval(
            "SELECT count(*) FROM milestones WHERE overdue_noticed_on IS NULL"
        )
    finally:
        await conn.close()
    assert unmarked == 0


async def test_two_schedulers_at_once_emit_each_event_once(
    postgres_server: Any, tmp_path: Path
) -> None:
    dsn = postgres_server.new_database("overdue2")
    wanted = await seed(dsn, plans=20, per_plan=4)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start(dsn, log_a, "--pause", "0.005")
    b = start(dsn, log_b, "--pause", "0.005")
    try:
        await until_all(dsn, len(wanted))
        await asyncio.sleep(0.5)
        found = await overdue_events(dsn)
    finally:
        stop(a)
        stop(b)
    assert sorted(found) == sorted(str(m) for m in wanted)
    # Both did part of the work: the rows were shared out, not taken twice.
    assert "noticed" in log_a.read_text() and "noticed" in log_b.read_text()
    assert datetime.now(UTC).date() < TODAY  # the test's day lies in the future
