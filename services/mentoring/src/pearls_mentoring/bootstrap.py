"""The one place that wires settings, database, broker, schedulers and the HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from pearls_mentoring.config import Settings
from pearls_mentoring.entrypoints.consumers import subscription
from pearls_mentoring.entrypoints.http import router
from pearls_mentoring.service_layer.auth import Authenticator, Principal
from pearls_mentoring.service_layer.handlers import Mentoring, ParticipantEvents
from pearls_mentoring.service_layer.queries import Queries
from pearls_shared.http import OWN_SPANS_ONLY, install_http
from pearls_shared.runtime import every, runtime_for
from pearls_shared.settings import DeliverySettings, HttpSettings, KafkaSettings
from pearls_shared.token_files import TokenFiles, TokenList, reload_on_sighup
from pearls_shared.tokens import TokenEntry

SERVICE = "mentoring"


def coordinator_tokens(settings: Settings) -> TokenFiles[Principal]:
    """Coordinators from settings and their file, read again when it changes or on SIGHUP,
    so tokens rotate without a restart (``pearls_shared.token_files``)."""
    coordinators = TokenList(
        "coordinator", TokenEntry, settings.coordinators, settings.coordinators_file
    )
    return TokenFiles([coordinators], lambda kind, e: Principal(kind, e.id), service=SERVICE)


def create_app(
    settings: Settings,
    *,
    kafka: KafkaSettings | None = None,
    delivery: DeliverySettings | None = None,
    limits: HttpSettings | None = None,
) -> FastAPI:
    """The service's ASGI app; its lifespan runs migrations, relay, consumer and schedulers."""
    events = ParticipantEvents()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_for(
            SERVICE,
            settings,
            kafka=kafka,
            delivery=delivery,
            subscriptions=(subscription(events, settings.consumer_group),),
        ) as runtime:
            service = Mentoring(runtime.pool, settings.weights())
            app.state.runtime = runtime
            app.state.mentoring = service
            app.state.queries = Queries(runtime.pool)
            staff = coordinator_tokens(settings)
            app.state.authenticator = Authenticator(runtime.pool, staff.book)
            app.state.staff_tokens = staff
            stop = asyncio.Event()
            # Matching runs for everyone waiting at once; overdue milestones are noticed
            # once each. Both are safe with several replicas (see handlers).
            schedulers = [
                asyncio.create_task(
                    every(settings.matching_interval_s, service.match_waiting, stop, name="match")
                ),
                asyncio.create_task(
                    every(settings.overdue_interval_s, service.notice_overdue, stop, name="overdue")
                ),
            ]
            app.state.schedulers = schedulers
            try:
                with reload_on_sighup(staff):
                    yield
            finally:
                stop.set()
                await asyncio.gather(*schedulers)

    app = FastAPI(
        title="Pearls mentoring",
        version="1.0.0",
        summary="Mentor matching, action plans, co-learning sessions and the playbook of the"
        " BSR Cultural Pearls programme.",
        description="Accepted participants arrive from `pearls.applications.v1` and are matched"
        " with mentors (optimal for the whole cohort, explained); participants write action"
        " plans that their mentor approves and report progress per milestone; co-learning"
        " sessions bring participants with shared themes together; good practices are"
        " collected in a public playbook. Every change is published on `pearls.mentoring.v1`.",
        lifespan=lifespan,
        telemetry=OWN_SPANS_ONLY,
    )

    async def ready() -> dict[str, bool]:
        runtime = getattr(app.state, "runtime", None)
        tasks = getattr(app.state, "schedulers", [])
        if runtime is None:
            return {"runtime": False}
        return {**await runtime.checks(), "schedulers": not any(t.done() for t in tasks)}

    install_http(app, ready=ready, limits=limits or settings.http(), service=SERVICE)
    app.include_router(router)
    return app
