"""The service as a real process, SIGKILLed while an e-mail is in flight and while the
consumer works through a batch; after restart every e-mail arrives exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS
from pearls_shared.db import connect
from pearls_shared.events.samples import sample
from pearls_shared.testing import start_group_at_end, wait_for

pytestmark = [pytest.mark.integration]

ACCEPTED = "pearls.application.accepted"


class ServiceProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "pearls_notifications"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            )

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def sent_rows(dsn: str, tag: str) -> list[Any]:
    try:
        conn = await connect(dsn)
    except OSError:
        return []
    try:
        return list(
            await conn.fetch(
                "SELECT recipient, status, message_id FROM deliveries WHERE recipient LIKE $1",
                f"%{tag}%",
            )
        )
    except Exception:  # tables not migrated yet
        return []
    finally:
        await conn.close()


async def test_killed_mid_send_and_mid_batch_then_restarted_sends_each_email_once(
    postgres_server: Any,
    smtp_sink: Any,
    publisher: Any,
    tag: str,
    personalize: Any,
    kafka_bootstrap_servers: str,
    tmp_path: Path,
) -> None:
    dsn = postgres_server.new_database("ntfcrash")
    # The group starts at the topics' end: after a long run the topics hold thousands of
    # other tests' events, and working through them first would decide the timing below.
    group = f"notifications-crash-{uuid.uuid4()}"
    await start_group_at_end(kafka_bootstrap_servers, group, CONSUMED_TOPICS)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "PEARLS_NOTIFICATIONS_DATABASE_URL": dsn,
        "PEARLS_NOTIFICATIONS_CONSUMER_GROUP": group,
        "PEARLS_NOTIFICATIONS_NOT_BEFORE": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "PEARLS_NOTIFICATIONS_SMTP_PORT": str(smtp_sink.port),
        "PEARLS_NOTIFICATIONS_RATE_LIMIT_PER_MINUTE": "60000",
        "PEARLS_NOTIFICATIONS_RETRY_BACKOFF_INITIAL_S": "0.2",
        "PEARLS_NOTIFICATIONS_RETRY_BACKOFF_MAX_S": "1",
        "PEARLS_NOTIFICATIONS_RETRY_MAX_ATTEMPTS": "1000",
        "PEARLS_NOTIFICATIONS_SENDER_IDLE_POLL_S": "0.2",
        "PEARLS_NOTIFICATIONS_HTTP_PORT": str(_free_port()),
    }
    # The server accepts three messages, then holds the fourth and every later one
    # mid-DATA: the process is killed while those e-mails are in flight (one per sender
    # worker; no 250 ever reaches them).
    smtp_sink.handler.hold_at = 4
    first = ServiceProcess(env, tmp_path / "first.log")
    try:
        for _ in range(10):
            await publisher.publish(personalize(sample(ACCEPTED)))
        held = await asyncio.to_thread(smtp_sink.handler.holding.wait, 90)
        assert held, (tmp_path / "first.log").read_text()[-3000:]
        # More events arrive; the consumer is killed while working through them.
        for _ in range(20):
            await publisher.publish(personalize(sample(ACCEPTED)))

        # The kill must fall outside the 250-to-commit window, as asserted below: the
        # e-mails the server accepted are recorded as sent first (on a slow database,
        # a container's, the records can trail the publishing above).
        async def recorded() -> bool:
            accepted = {(r.rcpt, r.message_id) for r in smtp_sink.tagged(tag)}
            sent = {
                (r["recipient"], r["message_id"])
                for r in await sent_rows(dsn, tag)
                if r["status"] == "sent"
            }
            return sent == accepted

        await wait_for(recorded, what="the accepted e-mails recorded as sent")
        first.kill()
    finally:
        first.stop()
    smtp_sink.handler.release.set()
    # At the kill: what the server accepted is exactly what is recorded as sent
    # (the kill fell outside the 250-to-commit window); the rest is still owed.
    accepted = {(r.rcpt, r.message_id) for r in smtp_sink.tagged(tag)}
    rows = await sent_rows(dsn, tag)
    assert len(accepted) <= 3
    assert {(r["recipient"], r["message_id"]) for r in rows if r["status"] == "sent"} == accepted
    assert any(r["status"] == "pending" for r in rows), (
        [r["status"] for r in rows],
        (tmp_path / "first.log").read_text()[-3000:],
    )

    second = ServiceProcess(env, tmp_path / "second.log")
    try:

        async def all_sent() -> bool:
            rows = await sent_rows(dsn, tag)
            return len(rows) == 60 and all(r["status"] == "sent" for r in rows)

        await wait_for(all_sent, within=120, what="all 60 e-mails sent after the restart")
    finally:
        second.stop()

    counts = smtp_sink.counts(tag)
    rows = await sent_rows(dsn, tag)
    assert set(counts) == {(r["recipient"], r["message_id"]) for r in rows}
    assert len(counts) == 60
    assert set(counts.values()) == {1}, "no recipient got an e-mail twice"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
