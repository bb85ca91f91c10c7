"""Schemathesis fuzzes every operation of the published OpenAPI schema.

The real app runs with its lifespan (database, relay, consumer, schedulers) on
a fresh database; requests carry a coordinator token so they reach past
authentication. No response may be a 5xx or break its documented schema.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from pearls_mentoring.bootstrap import create_app
from pearls_shared.settings import DeliverySettings, KafkaSettings

from .conftest import COORDINATOR, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def api_schema(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> Any:
    dsn = postgres_server.new_database("mentoring_fuzz")
    app = create_app(
        make_settings(dsn, f"mentoring-fuzz-{uuid.uuid4()}"),
        kafka=kafka_settings,
        delivery=DeliverySettings(relay_poll_interval_s=1),
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


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
