"""HTTP plumbing shared by the services' FastAPI apps.

A correlation id enters with the first request (``X-Correlation-ID``, or a new
one), is bound to every log line of the request and travels into every event
the request causes (``correlationid`` on the CloudEvent). Each request is a
server span (``pearls_shared.tracing``), child of the request's ``traceparent``
if it brings one. Health and metrics endpoints are the same everywhere:
``/health/live``, ``/health/ready`` (503 naming what failed) and ``/metrics``;
``/healthz`` and ``/readyz`` remain as deprecated aliases.

Hostile input is bounded before any endpoint sees it (``install_http`` puts it
all in place, with limits from ``HttpSettings``):

- a request body over ``max_body_bytes`` is refused with 413 ``body_too_large``:
  at once when ``Content-Length`` says so (nothing is read), otherwise when the
  bytes received pass the limit (chunked bodies; nothing beyond the limit is kept);
- a JSON body nested deeper than ``max_json_depth`` is refused with 422
  ``json_too_deep`` before it is parsed;
- a 422 never echoes more than an excerpt of the input: each error's ``input``
  and ``ctx`` values are cut to ``EXCERPT_CHARS`` characters, at most
  ``MAX_ERRORS`` errors are listed (then one entry saying how many more), and
  the whole body stays under ``MAX_ERROR_BODY_BYTES``.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pearls_shared.errors import DomainError, Unauthorized
from pearls_shared.settings import HttpSettings
from pearls_shared.tracing import tracer

CORRELATION_HEADER = "X-Correlation-ID"

# FastAPI(telemetry=...) for every service: FastAPI's own request tracing would start a
# second server span per request (in a trace of its own unless the client sent a
# traceparent) and a span per dependency, endpoint and serialisation: CPU on every
# request for spans no one reads. The request's server span is ``ServerSpans``'.
OWN_SPANS_ONLY: TelemetryConfig = {"tracing": False}
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id")


def correlation_id() -> str:
    """The correlation id of the request being served (a fresh one outside requests)."""
    try:
        return _current.get()
    except LookupError:
        return str(uuid.uuid4())


class Correlation:
    """Pure ASGI middleware: the request's correlation id, bound to its logs and trace
    and echoed in the response's ``X-Correlation-ID``. (Starlette's ``BaseHTTPMiddleware``
    would run the endpoint in a task group of its own and stream the response through
    memory streams: CPU on every request for nothing this needs.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(CORRELATION_HEADER, "")
        # Untrusted input ends up in logs and events: accept only a plain token.
        value = given if _VALID.match(given) else str(uuid.uuid4())

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = value
            await send(message)

        token = _current.set(value)
        trace.get_current_span().set_attribute("pearls.correlation_id", value)
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=value):
                await self.app(scope, receive, answered)
        finally:
            _current.reset(token)


def install_correlation(app: FastAPI) -> None:
    app.add_middleware(Correlation)


Readiness = Callable[[], Awaitable[bool | Mapping[str, bool]]]
"""What a service's readiness check answers: ``{"database": True, "broker": False, …}``
(each dependency by name), or one bool."""


async def _checks(ready: Readiness) -> dict[str, bool]:
    answer = await ready()
    if isinstance(answer, bool):
        return {"service": answer}
    return dict(answer)


def operations_router(ready: Readiness) -> APIRouter:
    """``/health/live`` (process alive), ``/health/ready`` (dependencies answer; 503 naming
    the failed ones), ``/metrics`` (Prometheus); ``/healthz`` and ``/readyz`` are the
    deprecated aliases of the first two."""
    router = APIRouter(tags=["operations"])

    @router.get("/health/live", summary="The process is alive")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/health/ready",
        summary="Database and broker answer",
        description="200 when every dependency answers; 503 with ``failed`` naming the ones"
        " that do not (``database``, ``broker``, or a background task of the service).",
        responses={503: {"description": "Not ready; ``failed`` lists what does not answer."}},
    )
    async def ready_(response: Response) -> dict[str, Any]:
        checks = await _checks(ready)
        failed = sorted(name for name, ok in checks.items() if not ok)
        body: dict[str, Any] = {
            "status": "not ready" if failed else "ready",
            "checks": {name: "ok" if ok else "failed" for name, ok in checks.items()},
        }
        if failed:
            response.status_code = 503
            body["failed"] = failed
        return body

    @router.get("/healthz", summary="The process is alive (alias of /health/live)", deprecated=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Dependencies answer (alias of /health/ready)",
        responses={503: {}},
        deprecated=True,
    )
    async def readyz(response: Response) -> dict[str, str]:
        if all((await _checks(ready)).values()):
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready"}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


# -- tracing: one server span per request -------------------------------------------

_UNTRACED = frozenset({"/health/live", "/health/ready", "/healthz", "/readyz", "/metrics"})


def _request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as text, for the propagator (``traceparent``, ``tracestate``)."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


class ServerSpans:
    """Pure ASGI middleware: each HTTP request is a server span, child of the request's
    own ``traceparent`` when it brings a valid one. Health and metrics are not traced."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _UNTRACED:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        parent = propagate.extract(_request_headers(scope))
        status: int | None = None

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracer(self.service).start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope.get("path", ""),
                "pearls.service": self.service,
            },
        ) as span:
            try:
                await self.app(scope, receive, observed)
            finally:
                route = scope.get("route")
                template = getattr(route, "path_format", None) or getattr(route, "path", None)
                if template:
                    span.set_attribute("http.route", template)
                    span.update_name(f"{method} {template}")
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))


class RefusalResponse(JSONResponse):
    """Errors echo the client's input, which may hold a lone surrogate (legal as a JSON
    escape, not encodable as UTF-8): escaped as ASCII, the 4xx is still sent."""

    def render(self, content: Any) -> bytes:
        return _compact(content).encode()


def install_refusals(app: FastAPI) -> None:
    """Domain refusals and invalid requests answer with one ``detail`` shape."""

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return RefusalResponse({"detail": exc.detail()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return RefusalResponse({"detail": bounded_errors(exc.errors())}, status_code=422)


# -- bounded error bodies: an excerpt of the input, never the input ---------------

EXCERPT_CHARS = 200
"""An error's ``input`` and each ``ctx`` value: at most this many characters (then "…")."""
MAX_ERRORS = 20
"""Errors listed in one 422; one more entry says how many were left out."""
MAX_ERROR_BODY_BYTES = 32 * 1024
"""A 422 body never exceeds this (fewer errors are listed if it would)."""
# Each entry stays far below the bound even when every character needs a 12-byte escape.
_MSG_CHARS = 200
_LOC_CHARS = 48
_LOC_PARTS = 12
_CTX_KEYS = 4
_ELLIPSIS = "\u2026"
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str)


def _compact(content: Any) -> str:
    return json.dumps(content, ensure_ascii=True, separators=(",", ":"), default=str)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + _ELLIPSIS


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """``value`` itself when its JSON is short; otherwise the first ``limit`` characters
    of its JSON text and "…". Encoding stops there, however large the value."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return (
            value
            if value.bit_length() <= 3 * limit
            else f"(an integer of {value.bit_length()} bits)"
        )
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, BaseException):
        return _cut(str(value), limit)
    if isinstance(value, bytes | bytearray):
        return _cut(bytes(value[: 4 * limit + 4]).decode(errors="replace"), limit)
    text = ""
    for chunk in _ENCODER.iterencode(value):
        text += chunk[: limit + 1 - len(text)]
        if len(text) > limit:
            return text[:limit] + _ELLIPSIS
    return json.loads(text)


def _bounded_error(error: Any) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"loc": [], "msg": _cut(str(error), _MSG_CHARS), "type": "invalid"}
    loc = [
        part if isinstance(part, int) else _cut(str(part), _LOC_CHARS)
        for part in itertools.islice(error.get("loc", ()), _LOC_PARTS)
    ]
    out: dict[str, Any] = {
        "type": _cut(str(error.get("type", "invalid")), _LOC_CHARS),
        "loc": loc,
        "msg": _cut(str(error.get("msg", "")), _MSG_CHARS),
    }
    if "input" in error:
        out["input"] = excerpt(error["input"])
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {
            _cut(str(k), _LOC_CHARS): excerpt(v)
            for k, v in itertools.islice(ctx.items(), _CTX_KEYS)
        }
    return out


def bounded_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors as a 422 lists them: at most ``MAX_ERRORS``, each with an excerpt
    of its input, the whole under ``MAX_ERROR_BODY_BYTES`` (a final entry counts the rest)."""
    errors = list(errors)
    shown: list[dict[str, Any]] = []
    # Room for the envelope and the final "n more" entry.
    budget = MAX_ERROR_BODY_BYTES - 256
    for error in errors[:MAX_ERRORS]:
        entry = _bounded_error(error)
        size = len(_compact(entry)) + 1
        if size > budget:
            break
        budget -= size
        shown.append(entry)
    if left := len(errors) - len(shown):
        shown.append(
            {
                "loc": [],
                "msg": f"{left} more error(s) not shown; fix the ones above first",
                "type": "too_many_errors",
            }
        )
    return shown


# -- bounded requests: body size and JSON depth, before any endpoint runs ---------


def _refusal(status: int, rule: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = _compact({"detail": [{"loc": ["body"], "msg": message, "type": rule}]}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            # The rest of the body is never read: the connection cannot be reused.
            (b"connection", b"close"),
        ],
    }
    return start, body


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than ``limit``.

    Works on the raw bytes at C speed (no parsing, no recursion): strings are cut out,
    the brackets kept, and each round removes the innermost pairs. Malformed JSON
    answers ``False`` and is left to the parser to refuse."""
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(text.split(b'"')[::2]).translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return False
        brackets = inner
    return b"[]" in brackets


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


class RequestLimits:
    """Pure ASGI middleware bounding a request before the app reads it.

    A body whose ``Content-Length`` is over ``max_body_bytes`` gets 413 at once, its
    bytes unread. Otherwise the bytes are counted as they arrive: past the limit, a 413
    is sent and the app is told the client went away (it never sees the rest, and
    whatever it answers is dropped). A JSON body is read whole first (at most
    ``max_body_bytes``), checked for depth, then handed on unchanged."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and not declared.isdigit():
            await self._refuse(send, 400, "content_length_invalid", "Content-Length: not a number")
            return
        if declared is not None and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        if _is_json(headers.get(b"content-type")):
            await self._json(scope, receive, send)
        else:
            await self._streamed(scope, receive, send)

    async def _refuse(self, send: Send, status: int, rule: str, message: str) -> None:
        start, body = _refusal(status, rule, message)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send) -> None:
        await self._refuse(
            send,
            413,
            "body_too_large",
            f"the request body is larger than {self.max_body_bytes} bytes",
        )

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left: the app hears it as usual
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = b"".join(chunks)
                del chunks
                if json_deeper_than(body, self.max_json_depth):
                    await self._refuse(
                        send,
                        422,
                        "json_too_deep",
                        f"arrays and objects nest deeper than {self.max_json_depth} levels",
                    )
                    return
                message = {"type": "http.request", "body": body, "more_body": False}
                break
        first: Message | None = message

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        started = False
        refused = False

        async def counted() -> Message:
            nonlocal size, refused
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    if not started and not refused:
                        refused = True
                        await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise
            # The app failed because its body was cut off; the 413 has been sent.


def install_request_limits(app: FastAPI, limits: HttpSettings) -> None:
    """Refuse oversized and too deeply nested bodies before any endpoint reads them."""
    app.add_middleware(
        RequestLimits,
        max_body_bytes=limits.max_body_bytes,
        max_json_depth=limits.max_json_depth,
    )


def install_tracing(app: FastAPI, service: str) -> None:
    """A server span for every request (added last, it runs outermost)."""
    app.add_middleware(ServerSpans, service=service)


def install_http(
    app: FastAPI, *, ready: Readiness, limits: HttpSettings, service: str | None = None
) -> None:
    """Everything a service's API shares, in one call from its ``bootstrap``: bounded
    requests, one refusal shape with bounded error bodies, correlation ids, a server span
    per request, and the operations endpoints. ``service`` names the tracer (default:
    the app's title)."""
    install_refusals(app)
    # Added first, so it runs inside the correlation middleware: a 413 carries the id too.
    install_request_limits(app, limits)
    install_correlation(app)
    install_tracing(app, service or app.title.removeprefix("Pearls ").strip().lower())
    app.include_router(operations_router(ready))


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
        413: {"model": ErrorOut, "description": "The body is larger than the service accepts."},
        422: {"model": ErrorOut, "description": "Invalid input; detail names field and rule."},
    }


def bearer_token(creds: HTTPAuthorizationCredentials | None) -> str:
    """The presented token, or a 401 naming the header."""
    if creds is None or not creds.credentials:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "a token is required")
    return creds.credentials
