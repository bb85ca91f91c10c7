"""Schemathesis fuzzes every operation of each service's published OpenAPI schema.

Each real app runs with its lifespan (database, relay, consumers, schedulers) on
a fresh database; requests carry a coordinator token so they reach past
authentication. No response may be a 5xx or break its documented schema, and no
refusal may be larger than the documented bound (``MAX_ERROR_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from pearls_shared.http import MAX_ERROR_BODY_BYTES
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import start_group_at_end
from pearls_shared.tokens import TokenEntry
from pearls_shared.topics import APPLICATIONS, MENTORING

pytestmark = pytest.mark.integration

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


@pytest.fixture(params=sorted(APPS))
def api_schema(
    request: pytest.FixtureRequest,
    postgres_server: Any,
    kafka_settings: KafkaSettings,
    contract_topics: tuple[str, ...],
) -> Any:
    dsn = postgres_server.new_database(f"{request.param}_fuzz")
    return schemathesis.openapi.from_asgi("/openapi.json", APPS[request.param](dsn, kafka_settings))


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis' lazy schema reads ``node._nodeid``, which pytest 9 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schemathesis.check
def refusals_stay_small(ctx: Any, response: Any, case: Any) -> bool | None:
    """A refusal never echoes the input at length (bounded by the shared HTTP plumbing)."""
    if response.status_code >= 400 and len(response.content) > MAX_ERROR_BODY_BYTES:
        raise AssertionError(
            f"a {response.status_code} of {len(response.content)} bytes"
            f" (bound: {MAX_ERROR_BODY_BYTES})"
        )
    return None


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {COORDINATOR}"},
        checks=[not_a_server_error, response_schema_conformance, refusals_stay_small],
    )
