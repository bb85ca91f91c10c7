"""Schemathesis fuzzes every operation of each service's published OpenAPI schema.

Each real app runs with its lifespan (database, relay, consumers, schedulers) on
a fresh database; requests carry a coordinator token so they reach past
authentication. No response may be a 5xx or break its documented schema, and no
refusal may be larger than the documented bound (``MAX_ERROR_BODY_BYTES``).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from pearls_shared.http import MAX_ERROR_BODY_BYTES
from pearls_shared.settings import KafkaSettings
from tests.apps import APPS, COORDINATOR

pytestmark = pytest.mark.integration

# The apps under test come from tests/apps.py (shared with the hostile-input tests).


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
