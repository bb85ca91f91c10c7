"""Rebuilding read models from the topics.

Two services keep a read model built from other services' events, with merges
that are idempotent and independent of arrival order, so replaying every event
into empty tables gives what the live consumer built:

- awards: its view of the participants (``pearls_awards``' own ``rebuild_view``);
- notifications: its contact directory (participants' contacts, erasures,
  mentors, mentor assignments), through the service's own ``directory_handlers``
  (erased addresses stay pseudonymised: the erasure registers are kept).
  Only the directory is rebuilt: planned and sent e-mails are history, and no
  e-mail is planned by a rebuild.

Each rebuild runs in one transaction: readers see the old model until the new
one is complete. Mentoring's participants and applications' data are those
services' own state (changed by their own commands too), not rebuildable.
"""

from __future__ import annotations

from typing import Any

from pearls_ops.database import connection, migrate
from pearls_ops.errors import OpsError
from pearls_ops.services import Service
from pearls_shared.replay import events

REBUILDABLE = ("awards", "notifications")
NOTIFICATIONS_DIRECTORY = (
    "participant_contacts",
    "erased_participants",
    "mentors",
    "mentor_assignments",
)


async def rebuild(service: Service) -> str:
    """Rebuild the service's read model from the topics; a one-line summary."""
    if service.name not in REBUILDABLE:
        raise OpsError(
            f"{service.name} has no read model built from other services' topics to rebuild"
            f" (those that do: {', '.join(REBUILDABLE)})"
        )
    settings = service.settings()
    dsn = service.dsn(settings)
    await migrate(service)  # the tables must exist (and be current) before they are filled
    async with connection(service, dsn) as conn:
        if service.name == "awards":
            from pearls_awards.service_layer.rebuild import rebuild_view

            applied = await rebuild_view(conn, service.kafka())
            return f"awards: participants' view rebuilt from {applied} events"
        return await _notifications(conn, service)


async def _notifications(conn: Any, service: Service) -> str:
    from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS
    from pearls_notifications.service_layer.handlers import directory_handlers

    applied = 0
    async with conn.transaction():
        for table in NOTIFICATIONS_DIRECTORY:
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        for table in NOTIFICATIONS_DIRECTORY:
            await conn.execute(f"DELETE FROM {table} WHERE true")  # noqa: S608 - fixed names
        handlers = directory_handlers()
        async for envelope, data in events(service.kafka(), CONSUMED_TOPICS, list(handlers)):
            await handlers[envelope.type](conn, envelope, data)
            applied += 1
    return f"notifications: contact directory rebuilt from {applied} events"
