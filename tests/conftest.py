"""Cross-service test helpers: topics, per-test databases, processes, polling.

Kafka and PostgreSQL come from the ``pearls_localinfra`` pytest plugin, which
uses the environment, testcontainers or the local launchers in that order and
fails the run (never skips) when none of them works.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pearls_shared.db import connect
from pearls_shared.migrations import migrate, shared_migrations
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import CONTRACT_TOPICS, ensure_topics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap_servers: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap_servers, topic_partitions=3)


@pytest.fixture(scope="session")
async def contract_topics(kafka_settings: KafkaSettings) -> tuple[str, ...]:
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


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently in ``topic``, partition by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    assert partitions, f"topic {topic} does not exist"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


class Process:
    """A test program run as a real OS process, output kept in a file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "backbone" / "programs.py"), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_exit(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"process did not exit; output:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.1)
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(*args: str, name: str = "proc") -> Process:
        process = Process(list(args), tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()


@pytest.fixture
async def db(service_db: str) -> AsyncIterator[Any]:
    conn = await connect(service_db)
    yield conn
    await conn.close()
