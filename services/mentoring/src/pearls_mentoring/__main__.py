"""``pearls-mentoring``: run the mentoring service's HTTP API with uvicorn."""

from __future__ import annotations

from pearls_mentoring.bootstrap import create_app
from pearls_mentoring.config import Settings
from pearls_shared.cli import serve, service_parser


def main(argv: list[str] | None = None) -> None:
    parser = service_parser(
        "mentoring",
        "Pearls mentoring service: mentor matching, action plans, co-learning sessions and"
        " the playbook.",
        8002,
    )
    serve("mentoring", Settings(), create_app, parser.parse_args(argv))


if __name__ == "__main__":
    main()
