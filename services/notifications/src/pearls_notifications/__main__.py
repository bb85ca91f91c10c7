"""``pearls-notifications``: run the notifications service (HTTP API, consumers, sender)."""

from __future__ import annotations

from pearls_notifications.bootstrap import create_app
from pearls_notifications.config import Settings
from pearls_shared.cli import serve, service_parser


def main(argv: list[str] | None = None) -> None:
    parser = service_parser(
        "notifications",
        "Pearls notifications service: consumes pearls.applications.v1, pearls.mentoring.v1"
        " and pearls.awards.v1, e-mails every person concerned once, in their language, and"
        " publishes pearls.notification.sent/.failed.",
        8004,
    )
    serve("notifications", Settings(), create_app, parser.parse_args(argv))


if __name__ == "__main__":
    main()
