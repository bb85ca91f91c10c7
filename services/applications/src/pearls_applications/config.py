"""Settings of the applications service, from ``PEARLS_APPLICATIONS_*`` variables.

Coordinators and configured reviewers are JSON lists, e.g.::

    PEARLS_APPLICATIONS_COORDINATORS='[{"id": "anna", "token_sha256": "9f86d0…"}]'
    PEARLS_APPLICATIONS_REVIEWERS='[{"id": "rev-lt-1", "name": "Rūta", "city_name": "Kaunas",
                                    "country": "LT", "token_sha256": "…"}]'

``token_sha256`` is the hex SHA-256 of the bearer token (``printf %s TOKEN |
sha256sum``). A plain ``token`` is accepted too (handy in development); it is
hashed when the settings load and never kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pearls_shared.events.common import CountryCode, Name
from pearls_shared.settings import DeliverySettings, KafkaSettings, PostgresSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def hash_token(token: str) -> bytes:
    """Tokens are long random strings, so one SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).digest()


class _TokenHolder(BaseModel):
    id: str = Field(min_length=1, max_length=100, description="Stable id, used in the audit.")
    token_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the token."
    )
    token: SecretStr | None = Field(default=None, description="Plain token; hashed at load.")

    @model_validator(mode="before")
    @classmethod
    def _hash_plain(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("token") and not values.get("token_sha256"):
            plain = values["token"]
            plain = plain.get_secret_value() if isinstance(plain, SecretStr) else str(plain)
            values = {**values, "token_sha256": hash_token(plain).hex(), "token": None}
        return values

    @model_validator(mode="after")
    def _has_hash(self) -> _TokenHolder:
        if not self.token_sha256:
            raise ValueError("give token_sha256 (or token)")
        self.token = None
        return self

    @property
    def digest(self) -> bytes:
        assert self.token_sha256 is not None
        return bytes.fromhex(self.token_sha256)


class CoordinatorEntry(_TokenHolder):
    """A coordinator: opens calls, assigns reviewers, decides."""


class ReviewerEntry(_TokenHolder):
    """A reviewer known from configuration; city and country drive conflict rules."""

    name: Name
    city_name: Name
    country: CountryCode


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PEARLS_APPLICATIONS_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls_applications"),
        description="asyncpg DSN of the service's own database.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address uvicorn binds.")
    http_port: int = Field(default=8001, ge=1, le=65535, description="Port uvicorn binds.")
    coordinators: list[CoordinatorEntry] = Field(
        default_factory=list, description="Coordinators and their hashed tokens (JSON list)."
    )
    reviewers: list[ReviewerEntry] = Field(
        default_factory=list, description="Configured reviewers and their hashed tokens."
    )
    scheduler_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often due calls are opened and closed."
    )
    log_level: str = Field(default="INFO", description="Log level of the service.")
    log_json: bool = Field(default=True, description="JSON log lines (false: console).")
    migrations_dir: Path = Field(default=MIGRATIONS_DIR, description="Service SQL migrations.")

    @model_validator(mode="after")
    def _distinct(self) -> Settings:
        # A shared token or id would make the audit trail name the wrong person.
        for kind, entries in (("coordinator", self.coordinators), ("reviewer", self.reviewers)):
            ids = [e.id for e in entries]
            if len(set(ids)) != len(ids):
                raise ValueError(f"every {kind} id must be given once")
        digests = [e.digest for e in [*self.coordinators, *self.reviewers]]
        if len(set(digests)) != len(digests):
            raise ValueError("every coordinator and reviewer needs a token of its own")
        return self

    def postgres(self) -> PostgresSettings:
        return PostgresSettings(database_url=self.database_url)

    def kafka(self) -> KafkaSettings:
        return KafkaSettings()

    def delivery(self) -> DeliverySettings:
        return DeliverySettings()
