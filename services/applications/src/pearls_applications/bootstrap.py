"""The one place that wires settings, database, broker and the HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pearls_applications.config import Settings
from pearls_applications.domain.errors import DomainError
from pearls_applications.entrypoints.http import router
from pearls_applications.service_layer.auth import Authenticator
from pearls_applications.service_layer.handlers import Applications
from pearls_shared.http import install_correlation, operations_router
from pearls_shared.runtime import service_runtime
from pearls_shared.settings import DeliverySettings, KafkaSettings

SERVICE = "applications"
log = structlog.get_logger(__name__)


class _RefusalResponse(JSONResponse):
    """Errors echo the client's input, which may hold a lone surrogate (legal as a JSON
    escape, not encodable as UTF-8): escaped as ASCII, the 4xx is still sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


async def _run_schedule(service: Applications, interval: float, stop: asyncio.Event) -> None:
    """Open and close calls on time, without anyone pressing a button."""
    while not stop.is_set():
        try:
            await service.run_schedule()
        except Exception:  # keep the loop alive; the next tick retries
            log.exception("schedule_tick_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def create_app(
    settings: Settings,
    *,
    kafka: KafkaSettings | None = None,
    delivery: DeliverySettings | None = None,
) -> FastAPI:
    """The service's ASGI app; its lifespan runs migrations, relay and scheduler."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(
            service=SERVICE,
            db=settings.postgres(),
            kafka=kafka or settings.kafka(),
            delivery=delivery or settings.delivery(),
            migrations_dir=settings.migrations_dir,
        ) as runtime:
            service = Applications(runtime.pool, settings.reviewers)
            app.state.runtime = runtime
            app.state.applications = service
            app.state.authenticator = Authenticator(settings.coordinators, settings.reviewers)
            stop = asyncio.Event()
            scheduler = asyncio.create_task(
                _run_schedule(service, settings.scheduler_interval_s, stop)
            )
            try:
                yield
            finally:
                stop.set()
                await scheduler

    app = FastAPI(
        title="Pearls applications",
        version="1.0.0",
        summary="Calls, applications, review and selection of the BSR Cultural Pearls programme.",
        description="Coordinators open calls; cities and regions apply; reviewers score;"
        " coordinators decide. Every change is audited and published as an event on"
        " `pearls.applications.v1`.",
        lifespan=lifespan,
    )

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _RefusalResponse({"detail": exc.detail()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _RefusalResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    async def ready() -> bool:
        runtime = getattr(app.state, "runtime", None)
        return runtime is not None and await runtime.ready()

    install_correlation(app)
    app.include_router(operations_router(ready))
    app.include_router(router)
    return app
