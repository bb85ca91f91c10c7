"""Schemathesis fuzzes every operation of each service's published OpenAPI schema.

Each real app runs with its lifespan (database, relay, consumers, schedulers) on
a fresh database; requests carry a coordinator token so they reach past
authentication. No response may be a 5xx or break its documented schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.tokens import TokenEntry

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


def _mentoring(dsn: str, kafka: KafkaSettings) -> FastAPI:
    from pearls_mentoring.bootstrap import create_app
    from pearls_mentoring.config import Settings

    return create_app(
        Settings(
            database_url=dsn,
            coordinators=[TokenEntry.model_validate(c) for c in _coordinators()],
            consumer_group=f"mentoring-fuzz-{uuid.uuid4()}",
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
            consumer_group=f"awards-fuzz-{uuid.uuid4()}",
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


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {COORDINATOR}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
