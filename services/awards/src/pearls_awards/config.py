"""Settings of the awards service, from ``PEARLS_AWARDS_*`` variables.

Coordinators are a JSON list in the same format as the other services::

    PEARLS_AWARDS_COORDINATORS='[{"id": "anna", "token_sha256": "9f86d0…"}]'

Jurors get their token when a coordinator opens the round that names them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pearls_shared.settings import ServiceSettings
from pearls_shared.token_files import FILE_SETTING_HELP
from pearls_shared.tokens import TokenEntry, check_distinct

# Inside the package, so that wheels and images carry them: no setting needed.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PEARLS_AWARDS_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls_awards"),
        description="asyncpg DSN of the service's own database.",
    )
    http_port: int = Field(default=8003, ge=1, le=65535, description="Port uvicorn binds.")
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8003"),
        description="Public address of the service, for links in the showcase and its feed.",
    )
    coordinators: list[TokenEntry] = Field(
        default_factory=list, description="Coordinators and their hashed tokens (JSON list)."
    )
    coordinators_file: Path | None = Field(
        default=None, description=f"Coordinators: {FILE_SETTING_HELP}"
    )
    consumer_group: str = Field(
        default="awards",
        min_length=1,
        max_length=200,
        description="Kafka consumer group of the service (one per deployment, shared by replicas).",
    )
    showcase_max_age_s: int = Field(
        default=60, ge=0, le=86400, description="How long partner sites may cache the showcase."
    )
    migrations_dir: Path = Field(default=MIGRATIONS_DIR, description="Service SQL migrations.")

    @model_validator(mode="after")
    def _distinct(self) -> Settings:
        check_distinct({"coordinator": self.coordinators})
        return self
