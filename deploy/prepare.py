"""Prepare one Pearls service's deployment: apply its migrations, create the topics.

The one-shot job of docker-compose.yml and the Helm chart's pre-install/pre-upgrade
hook run it in the service's own image, before the service starts::

    python /app/prepare.py applications

It reads the service's own environment (``PEARLS_<SERVICE>_DATABASE_URL``,
``PEARLS_<SERVICE>_MIGRATIONS_DIR``, ``KAFKA_*``) and does what the service's start-up
does first (``pearls_shared.runtime``): both steps are idempotent, so a service that
finds them done goes straight on. Migrations take an advisory lock, topics that exist
are left alone. A database or broker that is not reachable yet is waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

SERVICES = ("applications", "mentoring", "awards", "notifications")


def service_settings(service: str) -> Any:
    """The service's settings, read from the environment as the service reads them."""
    if service not in SERVICES:
        raise SystemExit(f"prepare: unknown service {service!r} (one of {', '.join(SERVICES)})")
    return importlib.import_module(f"pearls_{service}.config").Settings()


def topics() -> list[str]:
    """Every contract topic and its dead-letter topic (what each service ensures)."""
    from pearls_shared.settings import KafkaSettings
    from pearls_shared.topics import CONTRACT_TOPICS, dead_letter_topic

    kafka = KafkaSettings()
    return [*CONTRACT_TOPICS, *(dead_letter_topic(t, kafka) for t in CONTRACT_TOPICS)]


async def _retry(what: str, attempts: int, step: Any) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return await step()
        except (OSError, ConnectionError) as exc:  # not up yet: wait and try again
            if attempt == attempts:
                raise
            print(f"prepare: {what} not reachable yet ({exc!r}), attempt {attempt}/{attempts}")
            await asyncio.sleep(min(2.0 * attempt, 10.0))
    raise AssertionError("unreachable")


def migrations_dir(service: str, settings: Any) -> Path:
    folder: Path | None = settings.migrations_dir
    if folder is None or not folder.is_dir():
        raise SystemExit(
            f"prepare: {service}: migrations folder {folder} not found"
            f" (set PEARLS_{service.upper()}_MIGRATIONS_DIR)"
        )
    return folder


async def prepare(service: str, *, attempts: int) -> None:
    from aiokafka.errors import KafkaConnectionError

    from pearls_shared.runtime import prepare_database
    from pearls_shared.settings import KafkaSettings
    from pearls_shared.topics import ensure_topics

    settings = service_settings(service)
    dsn = settings.database_url.get_secret_value()
    folder = migrations_dir(service, settings)
    applied = await _retry("database", attempts, lambda: prepare_database(dsn, folder))
    print(f"prepare: {service}: migrations applied now: {', '.join(applied) or 'none'}")

    async def create() -> None:
        try:
            await ensure_topics(KafkaSettings(), topics())
        except KafkaConnectionError as exc:
            raise ConnectionError(str(exc)) from exc

    await _retry("Kafka", attempts, create)
    print(f"prepare: topics present: {', '.join(topics())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--attempts", type=int, default=30, help="tries per step (default 30)")
    args = parser.parse_args(argv)
    asyncio.run(prepare(args.service, attempts=args.attempts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
