"""The one place that wires settings, database, broker and the HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import cast

from fastapi import FastAPI

from pearls_applications.config import ReviewerEntry, Settings
from pearls_applications.entrypoints.http import router
from pearls_applications.service_layer.auth import Authenticator
from pearls_applications.service_layer.handlers import Applications
from pearls_shared.http import OWN_SPANS_ONLY, install_http
from pearls_shared.runtime import every, runtime_for
from pearls_shared.settings import DeliverySettings, HttpSettings, KafkaSettings
from pearls_shared.token_files import reload_on_sighup

SERVICE = "applications"


def create_app(
    settings: Settings,
    *,
    kafka: KafkaSettings | None = None,
    delivery: DeliverySettings | None = None,
    limits: HttpSettings | None = None,
) -> FastAPI:
    """The service's ASGI app; its lifespan runs migrations, relay and scheduler."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_for(SERVICE, settings, kafka=kafka, delivery=delivery) as runtime:
            # Staff tokens from settings and files; files are read again when they
            # change or on SIGHUP, so tokens rotate without a restart.
            staff = settings.token_files()
            service = Applications(
                runtime.pool,
                lambda: cast("tuple[ReviewerEntry, ...]", staff.entries("reviewer")),
                idempotency_retention=timedelta(seconds=settings.idempotency_retention_s),
            )
            app.state.runtime = runtime
            app.state.applications = service
            app.state.authenticator = Authenticator(staff.book)
            app.state.staff_tokens = staff
            stop = asyncio.Event()
            # Open and close calls on time, without anyone pressing a button; forget
            # expired idempotency keys (both safe on several replicas, see handlers).
            schedulers = [
                asyncio.create_task(
                    every(
                        settings.scheduler_interval_s, service.run_schedule, stop, name="schedule"
                    )
                ),
                asyncio.create_task(
                    every(
                        settings.housekeeping_interval_s,
                        service.purge_idempotency,
                        stop,
                        name="purge_idempotency",
                    )
                ),
            ]
            try:
                with reload_on_sighup(staff):
                    yield
            finally:
                stop.set()
                await asyncio.gather(*schedulers)

    app = FastAPI(
        title="Pearls applications",
        version="1.0.0",
        summary="Calls, applications, review and selection of the BSR Cultural Pearls programme.",
        description="Coordinators open calls; cities and regions apply; reviewers score;"
        " coordinators decide. Every change is audited and published as an event on"
        " `pearls.applications.v1`.",
        lifespan=lifespan,
        telemetry=OWN_SPANS_ONLY,
    )

    async def ready() -> dict[str, bool]:
        runtime = getattr(app.state, "runtime", None)
        return await runtime.checks() if runtime is not None else {"runtime": False}

    install_http(app, ready=ready, limits=limits or settings.http(), service=SERVICE)
    app.include_router(router)
    return app
