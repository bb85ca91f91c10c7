"""Events this service reacts to: event -> handler (thin)."""

from __future__ import annotations

from pearls_mentoring.service_layer.handlers import ParticipantEvents
from pearls_shared import privacy
from pearls_shared.runtime import Subscription
from pearls_shared.topics import APPLICATIONS


def subscription(events: ParticipantEvents, group: str) -> Subscription:
    return Subscription(
        name=group,
        topics=(APPLICATIONS,),
        # Every event arrives with the registered erased addresses pseudonymised.
        handlers=privacy.guard_all(
            {
                "pearls.application.accepted": events.on_accepted,
                "pearls.application.contacts_changed": events.on_contacts_changed,
                "pearls.application.withdrawn": events.on_withdrawn,
                "pearls.person.erased": events.on_erased,
            },
            events.eraser,
        ),
    )
