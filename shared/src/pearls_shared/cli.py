"""What every service's command line shares: ``--host``/``--port`` and serving with uvicorn."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from pearls_shared.logging import configure_logging
from pearls_shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def service_parser(service: str, description: str, default_port: int) -> argparse.ArgumentParser:
    """``pearls-<service>`` with --host and --port (defaults from the settings)."""
    prefix = f"PEARLS_{service.upper()}_"
    parser = argparse.ArgumentParser(
        prog=f"pearls-{service}",
        description=f"{description} Settings come from {prefix}* and KAFKA_* environment"
        f" variables (see services/{service}/README.md).",
    )
    parser.add_argument("--host", help=f"bind address (default: {prefix}HTTP_HOST)")
    parser.add_argument(
        "--port", type=int, help=f"port (default: {prefix}HTTP_PORT, {default_port})"
    )
    return parser


def serve(
    service: str,
    settings: S,
    create_app: Callable[[S], FastAPI],
    args: argparse.Namespace,
) -> None:
    """Configure logging, build the app and serve it until stopped."""
    configure_logging(service, settings.log_level, json=settings.log_json)
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
    )


GC_THRESHOLDS = (10_000, 10, 10)
"""The cyclic collector's thresholds in a service process (Python's default: 700, 10, 10)."""


def tune_garbage_collector() -> None:
    """Call once the code is imported and the app built: what exists then lives as long
    as the process, so it is moved out of the cyclic collector's scans, and the young
    generation is collected after 10,000 allocations instead of 700. A consumer batch
    allocates thousands of short-lived objects (decoded JSON, models); with the default
    the collector ran several times per batch and took about a third of the consumer's
    CPU (bench/README.md). Reference counting still frees almost everything at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
