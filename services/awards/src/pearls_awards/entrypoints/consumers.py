"""Events this service reacts to: event -> handler (thin)."""

from __future__ import annotations

from pearls_awards.domain.view import VIEW_EVENTS
from pearls_awards.service_layer.handlers import ViewEvents
from pearls_shared.runtime import Subscription
from pearls_shared.topics import APPLICATIONS, MENTORING


def subscription(events: ViewEvents, group: str) -> Subscription:
    return Subscription(
        name=group,
        topics=(APPLICATIONS, MENTORING),
        handlers={
            **dict.fromkeys(VIEW_EVENTS, events.on_event),
            "pearls.person.erased": events.on_erased,
        },
    )
