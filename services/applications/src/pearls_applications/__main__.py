"""``pearls-applications``: run the applications service's HTTP API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from pearls_applications.bootstrap import create_app
from pearls_applications.config import Settings
from pearls_shared.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pearls-applications",
        description="Pearls applications service: calls, submissions, review and decisions."
        " Settings come from PEARLS_APPLICATIONS_* and KAFKA_* environment variables"
        " (see services/applications/README.md).",
    )
    parser.add_argument("--host", help="bind address (default: PEARLS_APPLICATIONS_HTTP_HOST)")
    parser.add_argument(
        "--port", type=int, help="port (default: PEARLS_APPLICATIONS_HTTP_PORT, 8001)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("applications", settings.log_level, json=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
