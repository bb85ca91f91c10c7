"""The four Pearls services as the operator sees them: settings, database, consumer groups.

Each service's settings are read by its own settings class, from the same
environment variables the service itself reads (``PEARLS_<SERVICE>_*``,
``KAFKA_*``, ``PEARLS_DELIVERY_*``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from pearls_ops.errors import UNREACHABLE, OpsError
from pearls_shared import topics
from pearls_shared.settings import DeliverySettings, KafkaSettings


def _applications() -> BaseSettings:
    from pearls_applications.config import Settings

    settings: BaseSettings = Settings()
    return settings


def _mentoring() -> BaseSettings:
    from pearls_mentoring.config import Settings

    settings: BaseSettings = Settings()
    return settings


def _awards() -> BaseSettings:
    from pearls_awards.config import Settings

    settings: BaseSettings = Settings()
    return settings


def _notifications() -> BaseSettings:
    from pearls_notifications.config import Settings

    settings: BaseSettings = Settings()
    return settings


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    env_prefix: str
    load: Callable[[], BaseSettings]
    # Topics the service's consumer group reads (empty: it consumes nothing).
    consumes: tuple[str, ...]

    def settings(self) -> BaseSettings:
        try:
            return self.load()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(settings)"
            raise OpsError(
                f"{self.name}: invalid settings ({self.env_prefix}{where.upper()}): {first['msg']}",
                UNREACHABLE,
            ) from exc

    def dsn(self, settings: BaseSettings | None = None) -> str:
        chosen: Any = settings or self.settings()
        url = chosen.database_url
        assert isinstance(url, SecretStr)
        return url.get_secret_value()

    def migrations_dir(self, settings: BaseSettings | None = None) -> Path | None:
        folder: Path | None = getattr(settings or self.settings(), "migrations_dir", None)
        return folder

    def consumer_group(self, settings: BaseSettings | None = None) -> str | None:
        if not self.consumes:
            return None
        chosen: Any = settings or self.settings()
        group: str = chosen.consumer_group
        return group

    def kafka(self) -> KafkaSettings:
        return kafka_settings()

    def delivery(self) -> DeliverySettings:
        return DeliverySettings()


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("applications", "PEARLS_APPLICATIONS_", _applications, ()),
        Service("mentoring", "PEARLS_MENTORING_", _mentoring, (topics.APPLICATIONS,)),
        Service("awards", "PEARLS_AWARDS_", _awards, (topics.APPLICATIONS, topics.MENTORING)),
        Service(
            "notifications",
            "PEARLS_NOTIFICATIONS_",
            _notifications,
            (topics.APPLICATIONS, topics.MENTORING, topics.AWARDS),
        ),
    )
}


def service(name: str) -> Service:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(SERVICES)
        raise OpsError(f"unknown service {name!r} (one of: {known})", UNREACHABLE) from None


def kafka_settings() -> KafkaSettings:
    try:
        return KafkaSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OpsError(
            f"invalid settings (KAFKA_{where.upper()}): {first['msg']}", UNREACHABLE
        ) from exc


def db_location(dsn: str) -> str:
    """``host:port/database`` of a DSN, for error messages (never the password)."""
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


def settings_items(settings: BaseSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in type(settings).model_fields}
