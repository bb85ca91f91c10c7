"""HTTP plumbing shared by the services' FastAPI apps.

A correlation id enters with the first request (``X-Correlation-ID``, or a new
one), is bound to every log line of the request and travels into every event
the request causes (``correlationid`` on the CloudEvent). Health and metrics
endpoints are the same everywhere.
"""

from __future__ import annotations

import contextvars
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from pearls_shared.errors import DomainError, Unauthorized

CORRELATION_HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id")


def correlation_id() -> str:
    """The correlation id of the request being served (a fresh one outside requests)."""
    try:
        return _current.get()
    except LookupError:
        return str(uuid.uuid4())


def install_correlation(app: FastAPI) -> None:
    @app.middleware("http")
    async def _correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(CORRELATION_HEADER, "")
        # Untrusted input ends up in logs and events: accept only a plain token.
        value = given if _VALID.match(given) else str(uuid.uuid4())
        token = _current.set(value)
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=value):
                response = await call_next(request)
        finally:
            _current.reset(token)
        response.headers[CORRELATION_HEADER] = value
        return response


def operations_router(ready: Callable[[], Awaitable[bool]]) -> APIRouter:
    """``/healthz`` (process alive), ``/readyz`` (dependencies answer), ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database and broker answer", responses={503: {}})
    async def readyz(response: Response) -> dict[str, str]:
        if await ready():
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready"}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class RefusalResponse(JSONResponse):
    """Errors echo the client's input, which may hold a lone surrogate (legal as a JSON
    escape, not encodable as UTF-8): escaped as ASCII, the 4xx is still sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def install_refusals(app: FastAPI) -> None:
    """Domain refusals and invalid requests answer with one ``detail`` shape."""

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return RefusalResponse({"detail": exc.detail()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return RefusalResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


# -- what every API's operations share: paging, error bodies, bearer tokens -------

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Each problem: ``loc`` (where), ``msg`` (what), ``type`` (the rule broken)."""

    detail: list[ErrorItem] | str


def refusal_responses(not_found: str) -> dict[int | str, dict[str, Any]]:
    """The documented 4xx answers of an API; ``not_found`` says what may be missing."""
    return {
        401: {"model": ErrorOut, "description": "Missing or unknown token."},
        403: {"model": ErrorOut, "description": "The token may not do this."},
        404: {"model": ErrorOut, "description": not_found},
        409: {"model": ErrorOut, "description": "The state forbids it; detail names the rule."},
        422: {"model": ErrorOut, "description": "Invalid input; detail names field and rule."},
    }


def bearer_token(creds: HTTPAuthorizationCredentials | None) -> str:
    """The presented token, or a 401 naming the header."""
    if creds is None or not creds.credentials:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "a token is required")
    return creds.credentials
