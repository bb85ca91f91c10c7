"""Fixtures of the `pearls` tests (helpers are in helpers.py)."""

from __future__ import annotations

import pytest

from deploy.ops.tests.helpers import clean_env


@pytest.fixture
def kafka_env(kafka_bootstrap_servers: str) -> dict[str, str]:
    """The environment of a `pearls` run against the test broker (and nothing else set)."""
    return clean_env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers)
