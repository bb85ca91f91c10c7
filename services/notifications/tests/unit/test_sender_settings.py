"""The sender's shared rate limiter and its concurrency setting."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from pearls_notifications.adapters import smtp
from pearls_notifications.adapters.smtp import RateLimiter
from pearls_notifications.config import Settings


async def test_concurrent_acquisitions_each_get_their_own_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))

    # The adapter's view only: its clock stands still and its sleeps are recorded.
    monkeypatch.setattr(smtp, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    monkeypatch.setattr(smtp, "asyncio", SimpleNamespace(sleep=no_sleep))
    limiter = RateLimiter(per_minute=600)  # one every 0.1 s
    await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    # The first goes at once; the three others wait 0.1, 0.2, 0.3 s: four workers sharing
    # the limiter never send faster than the limit.
    assert sorted(waits) == [0.1, 0.2, 0.3]


def test_sender_concurrency_must_leave_the_pool_a_connection() -> None:
    assert Settings().sender_concurrency == 4
    Settings(sender_concurrency=9, pool_max_size=10)
    with pytest.raises(ValidationError, match="sender_concurrency"):
        Settings(sender_concurrency=10, pool_max_size=10)


def test_notifications_consume_in_batches_by_default() -> None:
    assert Settings().consumer_batch_size == 100
    assert Settings(consumer_batch_size=1).consumer_batch_size == 1
