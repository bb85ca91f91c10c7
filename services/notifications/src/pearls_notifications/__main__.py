"""``pearls-notifications``: run the notifications service (HTTP API, consumers, sender).

Settings come from ``PEARLS_NOTIFICATIONS_*`` and ``KAFKA_*`` environment
variables (see the service README); flags override host and port.
"""

from __future__ import annotations

import argparse

import uvicorn

from pearls_notifications.bootstrap import SERVICE, create_app
from pearls_notifications.config import Settings
from pearls_shared.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pearls-notifications",
        description="Pearls notifications service: consumes pearls.applications.v1, "
        "pearls.mentoring.v1 and pearls.awards.v1, e-mails every person concerned once, in "
        "their language, and publishes pearls.notification.sent/.failed. Configured by "
        "PEARLS_NOTIFICATIONS_* and KAFKA_* environment variables.",
    )
    parser.add_argument("--host", help="interface to bind (PEARLS_NOTIFICATIONS_HTTP_HOST)")
    parser.add_argument("--port", type=int, help="port to bind (PEARLS_NOTIFICATIONS_HTTP_PORT)")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
