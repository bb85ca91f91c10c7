"""The service runtime: start-up order and readiness, against real Kafka and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from pearls_shared.runtime import service_runtime
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings
from pearls_shared.testing import wait_for

pytestmark = pytest.mark.integration


async def test_ready_while_database_and_relay_run(
    postgres_server: Any, kafka_settings: KafkaSettings
) -> None:
    dsn = postgres_server.new_database("rt")
    async with service_runtime(
        service="runtime-test",
        db=PostgresSettings(database_url=dsn),
        kafka=kafka_settings,
        delivery=DeliverySettings(),
        migrations_dir=None,
    ) as runtime:
        assert runtime.relay is not None
        await wait_for(lambda: _active(runtime), what="the relay to become active")
        assert await runtime.ready()
        assert runtime.relay_task is not None
        runtime.relay_task.cancel()  # a dead relay means nothing leaves the outbox
        await wait_for(lambda: _not_ready(runtime), what="readiness to drop")


async def _active(runtime: Any) -> bool:
    return bool(runtime.relay.active.is_set())


async def _not_ready(runtime: Any) -> bool:
    return not await runtime.ready()
