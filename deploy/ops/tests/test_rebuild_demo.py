"""`pearls rebuild` and `pearls demo`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from deploy.ops.tests.helpers import clean_env, pearls
from pearls_shared.events.applications import ApplicationAccepted
from pearls_shared.outbox import envelope_for


async def test_rebuild_awards_rebuilds_its_view_and_services_without_one_say_so(
    postgres_server: Any, kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    dsn = await postgres_server.new_database_async("opsrebuild")
    env = clean_env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers, PEARLS_AWARDS_DATABASE_URL=dsn)
    result = await pearls("rebuild", "awards", env=env)
    assert result.code == 0, result
    assert "participants' view rebuilt from" in result.stdout
    for name in ("applications", "mentoring"):
        result = await pearls("rebuild", name, env=env)
        assert result.code == 1, result
        assert f"{name} has no read model" in result.stderr


async def test_rebuild_notifications_directory_from_the_topics(
    postgres_server: Any, kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    dsn = await postgres_server.new_database_async("opsrebuildn")
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers, PEARLS_NOTIFICATIONS_DATABASE_URL=dsn
    )
    migrated = await pearls("migrate", "--service", "notifications", env=env)
    assert migrated.code == 0, migrated
    # A stale row the topics do not support, and an accepted participant they do.
    stale = uuid.uuid4()
    tag = uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO participant_contacts (participant_id, email, name, language, role,"
            " city_name, as_of) VALUES ($1, $2, 'Old', 'en', 'primary', 'Nowhere', now())",
            stale,
            f"stale.{tag}@example.org",
        )
    finally:
        await conn.close()
    event = ApplicationAccepted.model_validate(
        {
            "application_id": uuid.uuid4(),
            "call_id": uuid.uuid4(),
            "decided_at": datetime.now(UTC),
            "city_name": "Kuldīga",
            "country": "LV",
            "population": 10_500,
            "contacts": [
                {
                    "name": "Inese",
                    "email": f"inese.{tag}@example.org",
                    "language": "lv",
                    "role": "primary",
                }
            ],
            "themes": ["culture_creative_industries"],
            "languages": ["lv"],
            "from_waitlist": False,
        }
    )
    envelope = envelope_for(event, correlation_id=str(uuid.uuid4()))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            event.topic,
            key=envelope.subject.encode(),
            value=envelope.value(),
            headers=envelope.headers(),
        )
    finally:
        await producer.stop()

    result = await pearls("rebuild", "notifications", env=env)
    assert result.code == 0, result
    assert "contact directory rebuilt from" in result.stdout
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT participant_id, email FROM participant_contacts"
            " WHERE participant_id = ANY($1::uuid[])",
            [stale, event.application_id],
        )
        planned = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = $1", envelope.id
        )
    finally:
        await conn.close()
    assert [(r["participant_id"], r["email"]) for r in rows] == [
        (event.application_id, f"inese.{tag}@example.org")
    ]
    assert planned == 0  # a rebuild plans no e-mail


async def test_demo_passes_its_arguments_through() -> None:
    result = await pearls("demo", "--help", env=clean_env())
    assert result.code == 0, result
    assert "pearls-demo" in result.stdout
