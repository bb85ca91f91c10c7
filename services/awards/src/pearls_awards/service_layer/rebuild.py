"""Rebuild the participants' view from the topics alone.

The view's merges are commutative and idempotent, so replaying every event of
both topics into empty tables gives the view the live consumer built, whatever
the order. The replay runs in one transaction: readers see the old view until
the new one is complete. Nominations, scores and awards are people's decisions,
not a function of the topics, and are left as they are.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from pearls_awards.domain.view import VIEW_EVENTS
from pearls_awards.service_layer.handlers import ViewEvents
from pearls_shared import replay
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import APPLICATIONS, MENTORING

log = structlog.get_logger(__name__)


async def rebuild_view(conn: asyncpg.Connection[Any], kafka: KafkaSettings) -> int:
    """Replace the view with one built from the topics; return the events applied."""
    view = ViewEvents(nominate=False)
    # Erasures too: a fresh database learns them from the topics (any order works).
    handlers = {**dict.fromkeys(VIEW_EVENTS, view.on_event), "pearls.person.erased": view.on_erased}
    applied = 0
    async with conn.transaction():
        await conn.execute("LOCK TABLE participants IN EXCLUSIVE MODE")
        # Not TRUNCATE: nominations refer to these rows, and the rows come back.
        await conn.execute("DELETE FROM participants WHERE true")
        async for envelope, data in replay.events(kafka, (APPLICATIONS, MENTORING), list(handlers)):
            await handlers[envelope.type](conn, envelope, data)
            applied += 1
    log.info("view_rebuilt", events=applied)
    return applied
