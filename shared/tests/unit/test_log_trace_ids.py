"""Log lines carry the trace id and span id while a span is active."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from pearls_shared.logging import configure_logging
from pearls_shared.tracing import add_trace_ids, tracer


@pytest.fixture
def sdk_provider() -> Iterator[None]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    yield


def test_trace_and_span_ids_only_inside_a_span(sdk_provider: None) -> None:
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    with tracer("test").start_as_current_span("work") as span:
        ctx = span.get_span_context()
        line = add_trace_ids(None, "info", {"event": "x"})
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"


def test_json_lines_carry_correlation_and_trace_ids(
    sdk_provider: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("logtest")
    try:
        log = structlog.get_logger("logtest")
        with (
            structlog.contextvars.bound_contextvars(correlation_id="corr-1"),
            tracer("test").start_as_current_span("work") as span,
        ):
            log.info("inside")
        log.info("outside")
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    inside = next(x for x in lines if x["event"] == "inside")
    outside = next(x for x in lines if x["event"] == "outside")
    assert inside["correlation_id"] == "corr-1"
    assert inside["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert inside["service"] == "logtest"
    assert "trace_id" not in outside
