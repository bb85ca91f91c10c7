"""`pearls migrate` and `pearls status` against real PostgreSQL databases and Kafka."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from deploy.ops.tests.helpers import clean_env, free_port, pearls
from pearls_shared.testing import start_group_at_end
from pearls_shared.topics import APPLICATIONS


async def applied(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT namespace, name FROM schema_migrations")
    finally:
        await conn.close()
    return {f"{r['namespace']}/{r['name']}" for r in rows}


async def test_migrate_runs_each_services_migrations_on_its_own_database(
    postgres_server: Any, kafka_bootstrap_servers: str
) -> None:
    mentoring = await postgres_server.new_database_async("opsmig_m")
    awards = await postgres_server.new_database_async("opsmig_a")
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        PEARLS_MENTORING_DATABASE_URL=mentoring,
        PEARLS_AWARDS_DATABASE_URL=awards,
    )
    result = await pearls("migrate", "--service", "mentoring", "--service", "awards", env=env)
    assert result.code == 0, result
    assert "pearls_shared/0001_outbox_inbox.sql" in result.stdout
    assert "service/0001_mentoring.sql" in result.stdout
    m, a = await applied(mentoring), await applied(awards)
    assert "service/0001_mentoring.sql" in m and "pearls_shared/0001_outbox_inbox.sql" in m
    assert "service/0001_mentoring.sql" not in a and "pearls_shared/0001_outbox_inbox.sql" in a

    again = await pearls("migrate", "--service", "mentoring", env=env)
    assert again.code == 0, again
    assert "up to date" in again.stdout
    assert await applied(mentoring) == m


async def test_migrate_needs_a_choice_and_a_reachable_database() -> None:
    result = await pearls("migrate", env=clean_env())
    assert result.code == 2, result
    assert "--service" in result.stderr and "--all" in result.stderr
    port = free_port()
    dsn = f"postgresql://ops:secret-pw-4711@127.0.0.1:{port}/nowhere"
    result = await pearls(
        "migrate", "--service", "applications", env=clean_env(PEARLS_APPLICATIONS_DATABASE_URL=dsn)
    )
    assert result.code == 2, result
    [line] = result.stderr.strip().splitlines()
    assert f"applications: database unreachable at 127.0.0.1:{port}/nowhere" in line
    assert "4711" not in result.stderr


async def test_status_shows_outbox_backlog_and_consumer_lag(
    postgres_server: Any, kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    dsn = await postgres_server.new_database_async("opsstatus")
    group = f"mentoring-status-{uuid.uuid4()}"
    await start_group_at_end(kafka_bootstrap_servers, group, [APPLICATIONS])
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        PEARLS_MENTORING_DATABASE_URL=dsn,
        PEARLS_MENTORING_CONSUMER_GROUP=group,
    )
    migrated = await pearls("migrate", "--service", "mentoring", env=env)
    assert migrated.code == 0, migrated
    conn = await asyncpg.connect(dsn)
    try:
        for sent in ("NULL", "now()"):
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, message_key, headers, payload, created_at,"
                f" sent_at) VALUES ($1, $2, 'k', '[]', '{{}}', now() - interval '1 hour', {sent})",
                uuid.uuid4(),
                APPLICATIONS,
            )
    finally:
        await conn.close()

    result = await pearls("status", "--service", "mentoring", "--json", env=env)
    assert result.code == 0, result
    report = json.loads(result.stdout)
    [outbox] = report["outbox"]
    assert outbox["service"] == "mentoring"
    assert outbox["unsent"] == 1
    assert outbox["oldest_age_s"] >= 3600
    mine = [row for row in report["lag"] if row["group"] == group]
    assert {row["partition"] for row in mine} == {0, 1, 2}
    assert all(row["topic"] == APPLICATIONS and row["committed"] is not None for row in mine)

    table = await pearls("lag", "--service", "mentoring", env=env)
    assert table.code == 0, table
    assert "Outbox backlog" in table.stdout and group in table.stdout


async def test_status_with_an_unreachable_database_exits_2(
    kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    port = free_port()
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        PEARLS_AWARDS_DATABASE_URL=f"postgresql://ops:pw@127.0.0.1:{port}/awards",
        PEARLS_AWARDS_CONSUMER_GROUP=f"awards-status-{uuid.uuid4()}",
    )
    result = await pearls("status", "--service", "awards", env=env)
    assert result.code == 2, result
    assert "unreachable" in result.stdout
    assert f"awards: database unreachable at 127.0.0.1:{port}/awards" in result.stderr
