"""Events this service reacts to: event -> handler (thin)."""

from __future__ import annotations

from pearls_mentoring.service_layer.handlers import ParticipantEvents
from pearls_shared.runtime import Subscription
from pearls_shared.topics import APPLICATIONS


def subscription(events: ParticipantEvents, group: str) -> Subscription:
    return Subscription(
        name=group,
        topics=(APPLICATIONS,),
        handlers={
            "pearls.application.accepted": events.on_accepted,
            "pearls.application.withdrawn": events.on_withdrawn,
        },
    )
