"""What every service's command line shares: ``--host``/``--port`` and serving with uvicorn."""

from __future__ import annotations

import argparse
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
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
    )
