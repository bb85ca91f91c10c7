"""`pearls topics check|create` against the real broker, and an unreachable one."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient

from deploy.ops.tests.helpers import clean_env, free_port, pearls
from pearls_shared.topics import CONTRACT_TOPICS


async def test_check_reports_missing_dead_letter_topics_and_create_adds_them(
    kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    # A suffix of this test's own: its dead-letter topics do not exist yet.
    suffix = f".dlq-{uuid.uuid4().hex[:8]}"
    dead_letters = [t + suffix for t in CONTRACT_TOPICS]
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        KAFKA_DEAD_LETTER_SUFFIX=suffix,
        KAFKA_TOPIC_PARTITIONS="3",
    )
    try:
        before = await pearls("topics", "check", env=env)
        assert before.code == 1, before
        for name in dead_letters:
            assert f"{name}" in before.stdout
        assert before.stdout.count("missing") >= len(dead_letters)

        created = await pearls("topics", "create", env=env)
        assert created.code == 0, created
        for name in dead_letters:
            line = next(x for x in created.stdout.splitlines() if name in x)
            assert "created" in line

        after = await pearls("topics", "check", env=env)
        assert after.code == 0, after
        for name in [*CONTRACT_TOPICS, *dead_letters]:
            line = next(x for x in after.stdout.splitlines() if f" {name} " in x)
            assert "ok" in line, line

        again = await pearls("topics", "create", env=env)
        assert again.code == 0, again
        assert "created" not in again.stdout
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            await admin.delete_topics([t for t in dead_letters if t in existing])
        finally:
            await admin.close()


async def test_check_reports_topics_that_differ_from_the_settings(
    kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        KAFKA_TOPIC_PARTITIONS="5",
        KAFKA_TOPIC_MIN_INSYNC_REPLICAS="2",
    )
    result = await pearls("topics", "check", env=env)
    assert result.code == 1, result
    line = next(x for x in result.stdout.splitlines() if f" {CONTRACT_TOPICS[0]} " in x)
    assert "partitions 3, expected 5" in line
    assert "min.insync.replicas 1, expected 2" in line


async def test_check_reports_a_retention_that_differs_from_the_settings(
    kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        KAFKA_TOPIC_RETENTION_MS="-1",
        KAFKA_DEAD_LETTER_RETENTION_MS="86400000",
    )
    result = await pearls("topics", "check", env=env)
    assert result.code == 1, result
    lines = result.stdout.splitlines()
    event_line = next(x for x in lines if f" {CONTRACT_TOPICS[0]} " in x)
    assert "retention.ms 63072000000, expected -1" in event_line
    dead_line = next(x for x in lines if f" {CONTRACT_TOPICS[0]}.dlq " in x)
    assert "retention.ms 7776000000, expected 86400000" in dead_line


async def test_unreachable_broker_is_one_line_naming_it_and_exit_2() -> None:
    address = f"127.0.0.1:{free_port()}"
    env = clean_env(KAFKA_BOOTSTRAP_SERVERS=address)
    for args in (("topics", "check"), ("topics", "create"), ("dlq", "list")):
        result = await pearls(*args, env=env)
        assert result.code == 2, result
        assert result.stdout == ""
        [line] = result.stderr.strip().splitlines()
        assert f"Kafka broker unreachable at {address}" in line
