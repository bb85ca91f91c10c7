"""The real services' apps, each on a fresh database and the shared broker, for the
cross-service tests (fuzzing, hostile requests, hostile text).

A module of its own, not a test module: test modules import it, and pytest
imports a test module under its own name.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable

from fastapi import FastAPI

from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import start_group_at_end
from pearls_shared.tokens import TokenEntry
from pearls_shared.topics import APPLICATIONS, MENTORING

COORDINATOR = "fuzz-coordinator-token-0123456789"
DELIVERY = DeliverySettings(relay_poll_interval_s=1)


def _coordinators() -> list[dict[str, str]]:
    return [{"id": "fuzz", "token": COORDINATOR}]


def _applications(dsn: str, kafka: KafkaSettings) -> FastAPI:
    from pearls_applications.bootstrap import create_app
    from pearls_applications.config import Settings

    return create_app(
        Settings(database_url=dsn, coordinators=_coordinators()), kafka=kafka, delivery=DELIVERY
    )


def _fresh_group(prefix: str, kafka: KafkaSettings, topics: list[str]) -> str:
    """A consumer group that starts at the topics' end: the app sees only what comes next,
    not every other test's participants (the broker is shared by the run)."""
    group = f"{prefix}-{uuid.uuid4()}"
    coroutine = start_group_at_end(kafka.bootstrap_servers, group, topics)
    # In a thread of its own: callers may be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()
    return group


def _mentoring(dsn: str, kafka: KafkaSettings) -> FastAPI:
    from pearls_mentoring.bootstrap import create_app
    from pearls_mentoring.config import Settings

    return create_app(
        Settings(
            database_url=dsn,
            coordinators=[TokenEntry.model_validate(c) for c in _coordinators()],
            consumer_group=_fresh_group("mentoring-fuzz", kafka, [APPLICATIONS]),
        ),
        kafka=kafka,
        delivery=DELIVERY,
    )


def _awards(dsn: str, kafka: KafkaSettings) -> FastAPI:
    from pearls_awards.bootstrap import create_app
    from pearls_awards.config import Settings

    return create_app(
        Settings(
            database_url=dsn,
            coordinators=[TokenEntry.model_validate(c) for c in _coordinators()],
            consumer_group=_fresh_group("awards-fuzz", kafka, [APPLICATIONS, MENTORING]),
        ),
        kafka=kafka,
        delivery=DELIVERY,
    )


APPS: dict[str, Callable[[str, KafkaSettings], FastAPI]] = {
    "applications": _applications,
    "mentoring": _mentoring,
    "awards": _awards,
}
