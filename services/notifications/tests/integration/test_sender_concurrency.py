"""Several sender workers: each e-mail once, the workers really overlap, a wake
reaches all of them.

The mail server here holds every DATA until as many messages are in flight as
the service has workers (or a few seconds pass), so what it saw — how many
messages it held at once, over how many connections — says whether the
workers overlapped, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from pearls_shared.events.samples import sample
from pearls_shared.testing import wait_for

pytestmark = [pytest.mark.integration]

ACCEPTED = "pearls.application.accepted"
WORKERS = 4


class Gate:
    """Wraps the sink's DATA: counts messages in flight and holds each until ``width``
    are (at most ``hold_s``)."""

    def __init__(self, handler: Any, width: int, hold_s: float = 3.0) -> None:
        self.handler = handler
        self.original = handler.handle_DATA
        self.width = width
        self.hold_s = hold_s
        self.in_flight = 0
        self.most_in_flight = 0
        self.peers: set[Any] = set()
        self.lock = threading.Lock()
        self.full: asyncio.Event | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Runs on the SMTP server's own loop (its thread): the event is made there.
        if self.full is None:
            self.full = asyncio.Event()
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.peers.add(session.peer)
            if self.most_in_flight >= self.width:
                self.full.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), self.hold_s)
            reply: str = await self.original(server, session, envelope)
            return reply
        finally:
            with self.lock:
                self.in_flight -= 1


async def test_workers_send_each_email_once_over_their_own_connections_at_once(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    gate = Gate(smtp_sink.handler, WORKERS)
    smtp_sink.handler.handle_DATA = gate.handle_DATA
    # No poll to speak of: only the NOTIFY on commit wakes the workers, so four at once
    # means the wake reached every one of them.
    service = await start_service(sender_concurrency=WORKERS, sender_idle_poll_s=60)
    events = [personalize(sample(ACCEPTED)) for _ in range(12)]  # 2 contacts each
    for event in events:
        await publisher.publish(event)

    async def all_sent() -> bool:
        rows = await service.fetch(
            "SELECT status FROM deliveries WHERE recipient LIKE $1", f"%{tag}%"
        )
        return len(rows) == 24 and all(r["status"] == "sent" for r in rows)

    await wait_for(all_sent, within=90, what="every e-mail sent")
    counts = smtp_sink.counts(tag)
    assert len(counts) == 24
    assert set(counts.values()) == {1}  # each e-mail once, none twice
    rows = await service.fetch(
        "SELECT attempts, message_id FROM deliveries WHERE recipient LIKE $1", f"%{tag}%"
    )
    assert {r["attempts"] for r in rows} == {1}
    assert {r["message_id"] for r in rows} == {mid for _, mid in counts}
    # What the server saw: four messages held at once, never more, over four connections.
    assert gate.most_in_flight == WORKERS
    assert len(gate.peers) == WORKERS


async def test_one_worker_sends_one_at_a_time(
    start_service: Any, publisher: Any, smtp_sink: Any, tag: str, personalize: Any
) -> None:
    gate = Gate(smtp_sink.handler, 2, hold_s=0.2)
    smtp_sink.handler.handle_DATA = gate.handle_DATA
    service = await start_service(sender_concurrency=1)
    for _ in range(2):
        await publisher.publish(personalize(sample(ACCEPTED)))

    async def all_sent() -> bool:
        rows = await service.fetch(
            "SELECT status FROM deliveries WHERE recipient LIKE $1", f"%{tag}%"
        )
        return len(rows) == 4 and all(r["status"] == "sent" for r in rows)

    await wait_for(all_sent, within=60, what="every e-mail sent")
    assert set(smtp_sink.counts(tag).values()) == {1}
    assert gate.most_in_flight == 1
    assert len(gate.peers) == 1
