"""Settings of the applications service, from ``PEARLS_APPLICATIONS_*`` variables.

Coordinators and configured reviewers are JSON lists, e.g.::

    PEARLS_APPLICATIONS_COORDINATORS='[{"id": "anna", "token_sha256": "9f86d0…"}]'
    PEARLS_APPLICATIONS_REVIEWERS='[{"id": "rev-lt-1", "name": "Rūta", "city_name": "Kaunas",
                                    "country": "LT", "token_sha256": "…"}]'

``token_sha256`` is the hex SHA-256 of the bearer token (``printf %s TOKEN |
sha256sum``). A plain ``token`` is accepted too (handy in development); it is
hashed when the settings load and never kept (``pearls_shared.tokens.TokenEntry``).
Both lists may also come from files (``…_COORDINATORS_FILE``, ``…_REVIEWERS_FILE``),
read again when they change or on SIGHUP (``pearls_shared.token_files``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pearls_shared.events.common import CountryCode, Name
from pearls_shared.settings import ServiceSettings
from pearls_shared.token_files import FILE_SETTING_HELP, TokenFiles, TokenList, staff_tokens
from pearls_shared.tokens import Principal, TokenEntry, check_distinct

# Inside the package, so that wheels and images carry them: no setting needed.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class CoordinatorEntry(TokenEntry):
    """A coordinator: opens calls, assigns reviewers, decides."""


class ReviewerEntry(TokenEntry):
    """A reviewer known from configuration; city and country drive conflict rules."""

    name: Name
    city_name: Name
    country: CountryCode


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PEARLS_APPLICATIONS_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls_applications"),
        description="asyncpg DSN of the service's own database.",
    )
    http_port: int = Field(default=8001, ge=1, le=65535, description="Port uvicorn binds.")
    coordinators: list[CoordinatorEntry] = Field(
        default_factory=list, description="Coordinators and their hashed tokens (JSON list)."
    )
    reviewers: list[ReviewerEntry] = Field(
        default_factory=list, description="Configured reviewers and their hashed tokens."
    )
    coordinators_file: Path | None = Field(
        default=None, description=f"Coordinators: {FILE_SETTING_HELP}"
    )
    reviewers_file: Path | None = Field(
        default=None, description=f"Configured reviewers: {FILE_SETTING_HELP}"
    )
    scheduler_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often due calls are opened and closed."
    )
    idempotency_retention_s: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a submission's Idempotency-Key is remembered (a retry within"
        " it gets the first answer; after it, the key is forgotten and a retry is refused as a"
        " second application of the city). Purged by a periodic task.",
    )
    housekeeping_interval_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="How often expired idempotency records are purged.",
    )
    migrations_dir: Path = Field(default=MIGRATIONS_DIR, description="Service SQL migrations.")

    @model_validator(mode="after")
    def _distinct(self) -> Settings:
        # A shared token or id would make the audit trail name the wrong person.
        check_distinct({"coordinator": self.coordinators, "reviewer": self.reviewers})
        return self

    def token_files(self) -> TokenFiles[Principal]:
        """Coordinators and configured reviewers, with their files read again on change."""
        return staff_tokens(
            [
                TokenList(
                    "coordinator", CoordinatorEntry, self.coordinators, self.coordinators_file
                ),
                TokenList("reviewer", ReviewerEntry, self.reviewers, self.reviewers_file),
            ],
            service="applications",
        )
