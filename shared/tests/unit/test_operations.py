"""The operations endpoints every service shares, and the server span of a request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from pearls_shared.http import install_http
from pearls_shared.settings import HttpSettings
from pearls_shared.tracing import current_carrier, tracer


def _app(checks: dict[str, bool]) -> FastAPI:
    async def ready() -> dict[str, bool]:
        return checks

    app = FastAPI(title="Pearls example")
    install_http(app, ready=ready, limits=HttpSettings(), service="example")

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_live_and_ready_when_everything_answers() -> None:
    async with _client(_app({"database": True, "broker": True})) as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
        # The old names still answer, with their old bodies.
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}


@pytest.mark.parametrize("failing", [["broker"], ["database"], ["broker", "database"]])
async def test_not_ready_names_what_fails(failing: list[str]) -> None:
    checks = {"database": "database" not in failing, "broker": "broker" not in failing}
    async with _client(_app(checks)) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert ready.json()["failed"] == failing
        assert {k for k, v in ready.json()["checks"].items() if v == "failed"} == set(failing)
        old = await client.get("/readyz")
        assert (old.status_code, old.json()) == (503, {"status": "not ready"})
        assert (await client.get("/health/live")).status_code == 200


async def test_the_old_names_are_deprecated_in_openapi() -> None:
    paths = _app({"database": True}).openapi()["paths"]
    assert paths["/healthz"]["get"]["deprecated"] is True
    assert paths["/readyz"]["get"]["deprecated"] is True
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert not paths[path]["get"].get("deprecated", False)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_a_request_is_a_server_span_child_of_its_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    with tracer("caller").start_as_current_span("caller") as caller:
        incoming = current_carrier()
    async with _client(_app({"database": True})) as client:
        response = await client.get(
            "/things/abc", headers={**incoming, "X-Correlation-ID": "ops-test-1"}
        )
        assert response.status_code == 200
        await client.get("/health/ready")  # not traced
    [server] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER
        and (s.attributes or {}).get("pearls.correlation_id") == "ops-test-1"
    ]
    assert server.name == "GET /things/{thing_id}"
    assert server.parent is not None
    assert server.parent.span_id == caller.get_span_context().span_id
    assert server.context is not None
    assert server.context.trace_id == caller.get_span_context().trace_id
    assert (server.attributes or {})["http.response.status_code"] == 200
    names = [
        (s.name, s.kind, s.instrumentation_scope.name if s.instrumentation_scope else "")
        for s in spans.get_finished_spans()
    ]
    assert not [
        n for n in names if n[0].endswith("/health/ready") and n[2].startswith("pearls.")
    ], names


async def test_a_request_with_a_malformed_traceparent_starts_a_new_trace(
    spans: InMemorySpanExporter,
) -> None:
    async with _client(_app({"database": True})) as client:
        response = await client.get(
            "/things/x", headers={"traceparent": "garbage", "X-Correlation-ID": "ops-test-2"}
        )
    assert response.status_code == 200
    [server] = [
        s
        for s in spans.get_finished_spans()
        if (s.attributes or {}).get("pearls.correlation_id") == "ops-test-2"
    ]
    assert server.parent is None
