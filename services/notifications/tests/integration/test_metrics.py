"""E-mails sent and failed are counted on /metrics, and each delivery record keeps the
trace of the event that caused it."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pearls_shared.events.samples import sample
from pearls_shared.testing import wait_for

pytestmark = [pytest.mark.integration]

ACCEPTED = "pearls.application.accepted"


async def _metric(service: Any, name: str, **labels: str) -> float:
    text = (await service.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_sent_and_failed_emails_are_counted(
    start_service: Any, smtp_sink: Any, publisher: Any, personalize: Any, tag: str
) -> None:
    event = personalize(sample(ACCEPTED))
    refused = next(c.email for c in event.contacts if c.role == "primary")
    smtp_sink.handler.refuse[refused] = "550 5.1.1 mailbox unavailable"
    service = await start_service()
    template = "application_accepted"
    sent_before = await _metric(service, "pearls_emails_sent_total", template=template)
    failed_before = await _metric(
        service, "pearls_emails_failed_total", template=template, permanent="true"
    )
    await publisher.publish(event)

    async def settled() -> list[Any] | None:
        rows = await service.fetch(
            "SELECT recipient, status, trace_id FROM deliveries WHERE recipient LIKE $1"
            " AND template = $2",
            f"%{tag}%",
            template,
        )
        done = len(rows) == 2 and {r["status"] for r in rows} == {"sent", "failed"}
        return rows if done else None

    rows = await wait_for(settled, within=60, what="one e-mail sent and one failed")
    sent = await _metric(service, "pearls_emails_sent_total", template=template)
    failed = await _metric(
        service, "pearls_emails_failed_total", template=template, permanent="true"
    )
    assert (sent - sent_before, failed - failed_before) == (1, 1)
    # Both e-mails of the one event: one trace (started by the consumer, as the test's
    # publisher sent no traceparent), kept in each delivery record.
    [trace_id] = {r["trace_id"] for r in rows}
    assert trace_id is not None and len(trace_id) == 32
