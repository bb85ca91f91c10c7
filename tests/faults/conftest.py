"""The full fault campaign runs only when asked for (``make faults``: ``-m faults_full``)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults_full" in (config.option.markexpr or ""):
        return
    full = [item for item in items if item.get_closest_marker("faults_full")]
    if full:
        config.hook.pytest_deselected(items=full)
        items[:] = [item for item in items if item not in full]
