"""The one place that wires settings, database, broker, sender and HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from pearls_notifications.config import Settings
from pearls_notifications.entrypoints import http
from pearls_notifications.entrypoints.consumers import subscription
from pearls_notifications.service_layer.sender import Sender
from pearls_shared.http import OWN_SPANS_ONLY, install_http
from pearls_shared.runtime import service_runtime
from pearls_shared.settings import HttpSettings, KafkaSettings
from pearls_shared.token_files import reload_on_sighup

log = structlog.get_logger(__name__)

SERVICE = "notifications"


def create_app(
    settings: Settings | None = None,
    kafka: KafkaSettings | None = None,
    limits: HttpSettings | None = None,
) -> FastAPI:
    settings = settings or Settings()
    kafka = kafka or KafkaSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(
            service=SERVICE,
            db=settings.postgres(),
            kafka=kafka,
            delivery=settings.delivery(),
            migrations_dir=settings.migrations_dir,
            subscriptions=(subscription(settings),),
            consumer_batch_size=settings.consumer_batch_size,
        ) as rt:
            app.state.pool = rt.pool
            app.state.runtime = rt
            if settings.unsubscribe_secret is None:
                log.warning("unsubscribe_secret_unset", effect="links valid until restart")
            if not settings.token_digests() and settings.coordinators_file is None:
                log.warning("api_token_unset", effect="coordinator API refuses every request")
            sender = Sender(settings, rt.pool)
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop), name="sender")
            app.state.sender = sender
            app.state.sender_task = task
            try:
                with reload_on_sighup(coordinators):
                    yield
            finally:
                stop.set()
                await task

    app = FastAPI(
        title="Pearls notifications",
        version="1.0.0",
        description="Every event that concerns a person becomes one e-mail, in their language, "
        "never twice. Coordinators read the delivery log, resend failed e-mails and manage "
        "preferences; recipients unsubscribe from non-essential mail by signed link.",
        lifespan=lifespan,
        telemetry=OWN_SPANS_ONLY,
    )
    app.state.settings = settings
    # Read again when PEARLS_NOTIFICATIONS_COORDINATORS_FILE changes or on SIGHUP.
    coordinators = settings.coordinator_files()
    app.state.coordinator_tokens = coordinators.book
    app.state.staff_tokens = coordinators

    async def ready() -> dict[str, bool]:
        runtime = getattr(app.state, "runtime", None)
        task = getattr(app.state, "sender_task", None)
        if runtime is None:
            return {"runtime": False}
        return {**await runtime.checks(), "sender": task is not None and not task.done()}

    install_http(app, ready=ready, limits=limits or HttpSettings(), service=SERVICE)
    app.include_router(http.coordinator)
    app.include_router(http.public)
    return app
