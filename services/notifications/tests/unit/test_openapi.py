"""The HTTP API is documented: every operation has a summary, coordinator ones need a token."""

from __future__ import annotations

from pearls_notifications.bootstrap import create_app
from pearls_notifications.config import Settings


def test_every_operation_is_summarised_and_coordinator_operations_are_secured() -> None:
    spec = create_app(Settings()).openapi()
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    assert {p for p, _, _ in operations} >= {
        "/deliveries",
        "/deliveries/{delivery_id}",
        "/deliveries/{delivery_id}/resend",
        "/preferences/{recipient}",
        "/unsubscribe",
    }
    for path, method, op in operations:
        assert op.get("summary"), f"{method.upper()} {path} has no summary"
        if path.startswith(("/deliveries", "/preferences")):
            assert op.get("security"), f"{method.upper()} {path} is not secured"
