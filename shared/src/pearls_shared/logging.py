"""structlog JSON logging, with service, event id and correlation id bound per message,
and the trace id and span id of the active span (if any)."""

from __future__ import annotations

import logging
import sys

import structlog

from pearls_shared.tracing import add_trace_ids


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Configure structlog and the standard library once, at start-up.

    Per-message context (event id, correlation id) is bound with
    ``structlog.contextvars.bound_contextvars`` by the consumer and relay.
    """
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s %(name)s %(message)s")
