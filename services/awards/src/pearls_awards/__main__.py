"""``pearls-awards``: run the awards service, or rebuild its view from the topics."""

from __future__ import annotations

import asyncio

from pearls_awards.bootstrap import create_app
from pearls_awards.config import Settings
from pearls_awards.service_layer.rebuild import rebuild_view
from pearls_shared.cli import serve, service_parser
from pearls_shared.db import connect
from pearls_shared.logging import configure_logging
from pearls_shared.runtime import prepare_database


async def _rebuild(settings: Settings) -> int:
    dsn = settings.database_url.get_secret_value()
    await prepare_database(dsn, settings.migrations_dir)
    conn = await connect(dsn)
    try:
        return await rebuild_view(conn, settings.kafka())
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = service_parser(
        "awards",
        "Pearls awards service: award rounds, jury scoring, the BSR quota rule and the public"
        " showcase.",
        8003,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP API and the consumers (the default)")
    commands.add_parser(
        "rebuild",
        help="rebuild the participants' view from pearls.applications.v1 and"
        " pearls.mentoring.v1 alone (safe while the service runs)",
        description="Replays both topics from their beginning into an empty view, in one"
        " transaction. Rounds, nominations, scores and awards are kept.",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "rebuild":
        configure_logging("awards", settings.log_level, json=settings.log_json)
        applied = asyncio.run(_rebuild(settings))
        print(f"view rebuilt from {applied} events")
        return
    serve("awards", settings, create_app, args)


if __name__ == "__main__":
    main()
