"""OpenTelemetry tracing: one trace from an HTTP request to the e-mail it causes.

The W3C trace context (``traceparent``, ``tracestate``) travels wherever the
work goes:

- an HTTP request opens a server span (its parent from the request's own
  ``traceparent``, if any);
- an event written to the outbox stores the current context with the row, in
  the row's Kafka headers (the relay publishes later, from another task);
- the relay opens a producer span as a child of the stored context and puts
  the producer span's context in the record's headers;
- a consumer opens a consumer span whose parent is read from the record's
  headers (none, or a malformed one: a new trace starts), and everything the
  handler does — events it writes, e-mails it plans — continues that trace.

Header values are written and read by OpenTelemetry's propagator (``inject`` /
``extract``) through the Kafka carrier below, never formatted by hand.

Spans are always recorded (trace ids reach headers, logs and delivery records);
they are exported only when OTLP export is enabled (``PEARLS_TRACING_EXPORT`` or
the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, MutableSequence, Sequence

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from pearls_shared.settings import TracingSettings

log = structlog.get_logger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
"""The Kafka headers (and outbox header entries) that carry the W3C trace context."""

KafkaHeaders = Sequence[tuple[str, bytes | None]]
Context = otel_context.Context

_lock = threading.Lock()
_exporting = False


class _KafkaGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        key = key.lower()  # once, not per header: this runs for every record consumed
        values = [
            (value or b"").decode("utf-8", "replace")
            for name, value in carrier
            if name.lower() == key
        ]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [name for name, _ in carrier]


class _KafkaSetter(Setter[MutableSequence[tuple[str, bytes]]]):
    def set(self, carrier: MutableSequence[tuple[str, bytes]], key: str, value: str) -> None:
        carrier[:] = [(n, v) for n, v in carrier if n.lower() != key.lower()]
        carrier.append((key, value.encode()))


KAFKA_GETTER = _KafkaGetter()
KAFKA_SETTER = _KafkaSetter()


def configure_tracing(service: str, settings: TracingSettings | None = None) -> None:
    """Make sure spans are recorded in this process, and exported if the settings say so.

    The first call installs the SDK tracer provider (named after ``service``, or
    ``settings.service_name``); a provider already installed (another service in the
    same process, or a test's in-memory exporter) is kept."""
    global _exporting
    settings = settings or TracingSettings()
    with _lock:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            name = settings.service_name or f"pearls-{service}"
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
            trace.set_tracer_provider(provider)
        if settings.exporting() and not _exporting:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint
            exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
            provider.add_span_processor(BatchSpanProcessor(exporter))
            _exporting = True
            log.info("tracing_export_enabled", endpoint=endpoint or "(from OTEL_* variables)")


@functools.cache
def tracer(service: str) -> trace.Tracer:
    """The tracer of one Pearls service (its instrumentation scope names the service).

    Made once per service: the SDK's ``get_tracer`` resets the warning filters and
    builds scope objects on every call, and it is asked per request and per event. A
    tracer made before the provider is installed is a proxy that follows it."""
    return trace.get_tracer(f"pearls.{service}")


def inject_headers(
    headers: MutableSequence[tuple[str, bytes]], context: Context | None = None
) -> None:
    """Put the trace context (current, or ``context``) into Kafka headers, replacing any."""
    for name in TRACE_HEADERS:
        headers[:] = [(n, v) for n, v in headers if n.lower() != name]
    propagate.inject(headers, context=context, setter=KAFKA_SETTER)


def extract_headers(headers: KafkaHeaders) -> Context:
    """The context a record's headers carry; an empty one (a new trace starts) when they
    carry none or a malformed one."""
    return propagate.extract(headers, getter=KAFKA_GETTER, context=Context())


def current_carrier() -> dict[str, str]:
    """The current trace context as text headers (empty outside any span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> Context:
    """The context stored as text headers (``current_carrier``); empty when none."""
    return propagate.extract(dict(carrier or {}), context=Context())


def trace_id_hex(span: trace.Span | None = None) -> str | None:
    """The 32-hex trace id of ``span`` (or the current span); None when none is recording."""
    ctx = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None


def add_trace_ids(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: ``trace_id`` and ``span_id`` of the active span, if any."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", trace.format_trace_id(ctx.trace_id))
        event.setdefault("span_id", trace.format_span_id(ctx.span_id))
    return event
