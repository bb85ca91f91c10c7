"""Readiness names the dependency that does not answer, against real servers."""

from __future__ import annotations

from typing import Any

import pytest

from pearls_shared.db import create_pool
from pearls_shared.kafka import new_broker
from pearls_shared.runtime import Runtime, service_runtime
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings

pytestmark = pytest.mark.integration


async def test_a_running_service_reports_database_broker_and_relay(
    postgres_server: Any, kafka_settings: KafkaSettings
) -> None:
    async with service_runtime(
        service="readiness-test",
        db=PostgresSettings(database_url=postgres_server.new_database("ready")),
        kafka=kafka_settings,
        delivery=DeliverySettings(),
        migrations_dir=None,
    ) as runtime:
        assert await runtime.checks() == {"database": True, "broker": True, "relay": True}
        assert await runtime.ready()


async def test_a_broker_that_does_not_answer_is_named(service_db: str) -> None:
    pool = await create_pool(PostgresSettings(database_url=service_db))
    # A broker never started (as after a failed connect): it cannot answer.
    broker = new_broker(KafkaSettings(bootstrap_servers="127.0.0.1:1"), client_id="not-there")
    runtime = Runtime(service="readiness-test", pool=pool, broker=broker, relay=None)
    try:
        assert await runtime.checks() == {"database": True, "broker": False}
        assert not await runtime.ready()
    finally:
        await pool.close()
    # And a database that no longer answers.
    assert await runtime.checks() == {"database": False, "broker": False}
