"""Settings of the mentoring service, from ``PEARLS_MENTORING_*`` variables.

Coordinators are a JSON list in the same format as the applications service::

    PEARLS_MENTORING_COORDINATORS='[{"id": "anna", "token_sha256": "9f86d0…"}]'

``token_sha256`` is the hex SHA-256 of the bearer token (``printf %s TOKEN |
sha256sum``); a plain ``token`` is accepted too and hashed when the settings
load. Mentors get their token when a coordinator registers them; applicants
use the token the applications service gave them (see README).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pearls_mentoring.domain.matching import Weights
from pearls_shared.settings import ServiceSettings
from pearls_shared.token_files import FILE_SETTING_HELP
from pearls_shared.tokens import TokenEntry, check_distinct

# Inside the package, so that wheels and images carry them: no setting needed.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PEARLS_MENTORING_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls_mentoring"),
        description="asyncpg DSN of the service's own database.",
    )
    http_port: int = Field(default=8002, ge=1, le=65535, description="Port uvicorn binds.")
    coordinators: list[TokenEntry] = Field(
        default_factory=list, description="Coordinators and their hashed tokens (JSON list)."
    )
    coordinators_file: Path | None = Field(
        default=None, description=f"Coordinators: {FILE_SETTING_HELP}"
    )
    consumer_group: str = Field(
        default="mentoring",
        min_length=1,
        max_length=200,
        description="Kafka consumer group of the service (one per deployment, shared by replicas).",
    )
    weight_theme_overlap: float = Field(
        default=3.0, ge=0, description="Matching points for covering all of a participant's themes."
    )
    weight_cross_border: float = Field(
        default=1.0, ge=0, description="Matching points for a mentor from another country."
    )
    weight_balanced_load: float = Field(
        default=1.0, ge=0, description="Matching points for the first slot of an idle mentor."
    )
    matching_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often waiting participants are matched (all of them at once).",
    )
    overdue_interval_s: float = Field(
        default=60.0, gt=0, le=86400, description="How often overdue milestones are looked for."
    )
    migrations_dir: Path = Field(default=MIGRATIONS_DIR, description="Service SQL migrations.")

    @model_validator(mode="after")
    def _distinct(self) -> Settings:
        # A shared token or id would make the audit trail name the wrong person.
        check_distinct({"coordinator": self.coordinators})
        return self

    def weights(self) -> Weights:
        return Weights(
            theme_overlap=self.weight_theme_overlap,
            cross_border=self.weight_cross_border,
            balanced_load=self.weight_balanced_load,
        )
