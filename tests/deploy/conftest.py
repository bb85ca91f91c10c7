"""The deployment files' checks: docker-compose.yml and the Helm chart."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: checks the deployment files (compose, Dockerfile, Helm chart)"
    )
