"""The one place that wires settings, database, broker, showcase and the HTTP app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from pearls_awards.adapters.showcase import Showcase
from pearls_awards.config import Settings
from pearls_awards.entrypoints.consumers import subscription
from pearls_awards.entrypoints.http import router
from pearls_awards.service_layer.auth import Authenticator, Principal
from pearls_awards.service_layer.handlers import Awards, ViewEvents
from pearls_awards.service_layer.queries import Queries
from pearls_shared.http import OWN_SPANS_ONLY, install_http
from pearls_shared.runtime import runtime_for
from pearls_shared.settings import DeliverySettings, HttpSettings, KafkaSettings
from pearls_shared.token_files import TokenFiles, TokenList, reload_on_sighup
from pearls_shared.tokens import TokenEntry

SERVICE = "awards"


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
    """The service's ASGI app; its lifespan runs migrations, relay and the view's consumer."""
    events = ViewEvents()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_for(
            SERVICE,
            settings,
            kafka=kafka,
            delivery=delivery,
            subscriptions=(subscription(events, settings.consumer_group),),
        ) as runtime:
            app.state.runtime = runtime
            app.state.awards = Awards(runtime.pool)
            app.state.queries = Queries(runtime.pool)
            staff = coordinator_tokens(settings)
            app.state.authenticator = Authenticator(runtime.pool, staff.book)
            app.state.staff_tokens = staff
            with reload_on_sighup(staff):
                yield

    app = FastAPI(
        title="Pearls awards",
        version="1.0.0",
        summary="Award rounds, jury scoring and the public showcase of the BSR Cultural Pearls.",
        description="The awards service keeps its own view of the participants from"
        " `pearls.applications.v1` and `pearls.mentoring.v1`, nominates the eligible,"
        " lets the jury score (conflicts of interest derived and excluded), grants the award"
        " by the programme's rule (top scores, at most one per country, one additional award"
        " on a tight score) and shows the pearls publicly. Every change is published on"
        " `pearls.awards.v1`.",
        lifespan=lifespan,
        telemetry=OWN_SPANS_ONLY,
    )
    app.state.showcase = Showcase(str(settings.public_base_url))
    app.state.showcase_max_age_s = settings.showcase_max_age_s

    async def ready() -> dict[str, bool]:
        runtime = getattr(app.state, "runtime", None)
        return await runtime.checks() if runtime is not None else {"runtime": False}

    install_http(app, ready=ready, limits=limits or settings.http(), service=SERVICE)
    app.include_router(router)
    return app
