"""``pearls-applications``: run the applications service's HTTP API with uvicorn."""

from __future__ import annotations

from pearls_applications.bootstrap import create_app
from pearls_applications.config import Settings
from pearls_shared.cli import serve, service_parser


def main(argv: list[str] | None = None) -> None:
    parser = service_parser(
        "applications",
        "Pearls applications service: calls, submissions, review and decisions.",
        8001,
    )
    serve("applications", Settings(), create_app, parser.parse_args(argv))


if __name__ == "__main__":
    main()
