"""``pearls-mentoring``: run the mentoring service's HTTP API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from pearls_mentoring.bootstrap import create_app
from pearls_mentoring.config import Settings
from pearls_shared.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pearls-mentoring",
        description="Pearls mentoring service: mentor matching, action plans, co-learning"
        " sessions and the playbook. Settings come from PEARLS_MENTORING_* and KAFKA_*"
        " environment variables (see services/mentoring/README.md).",
    )
    parser.add_argument("--host", help="bind address (default: PEARLS_MENTORING_HTTP_HOST)")
    parser.add_argument("--port", type=int, help="port (default: PEARLS_MENTORING_HTTP_PORT, 8002)")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("mentoring", settings.log_level, json=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
