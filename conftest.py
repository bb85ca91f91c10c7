"""Fixtures for every test folder (tests/, shared/tests, services/*/tests).

Kafka and PostgreSQL come from the ``pearls_localinfra`` pytest plugin, which
uses the environment, testcontainers or the local launchers in that order and
fails the run (never skips) when none of them works.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pearls_shared.db import connect
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import CONTRACT_TOPICS, ensure_topics


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap_servers: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap_servers, topic_partitions=3)


@pytest.fixture(scope="session")
async def contract_topics(kafka_settings: KafkaSettings) -> tuple[str, ...]:
    """The four contract topics and their dead-letter topics, 3 partitions each."""
    dead_letters = [t + kafka_settings.dead_letter_suffix for t in CONTRACT_TOPICS]
    await ensure_topics(kafka_settings, [*CONTRACT_TOPICS, *dead_letters])
    return CONTRACT_TOPICS


@pytest.fixture
async def service_db(postgres_server: Any) -> str:
    """A fresh database with the shared library's tables (outbox, inbox)."""
    dsn: str = postgres_server.new_database("svc")
    conn = await connect(dsn)
    try:
        await migrate(conn, shared_migrations())
    finally:
        await conn.close()
    return dsn


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: integration tests must never skip quietly."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        names = ", ".join(report.nodeid for report in skipped[:10])
        reporter.write_line("")
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped, which CI does not allow: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
