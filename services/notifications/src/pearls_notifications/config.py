"""Settings of the notifications service, from ``PEARLS_NOTIFICATIONS_*`` variables.

Kafka comes from the shared ``KAFKA_*`` variables. Secrets are ``SecretStr`` so
they never appear in logs or reprs.

Coordinators are a JSON list in the same format as every other service::

    PEARLS_NOTIFICATIONS_COORDINATORS='[{"id": "anna", "token_sha256": "9f86d0…"}]'

``token_sha256`` is the hex SHA-256 of the bearer token (``printf %s TOKEN |
sha256sum``); a plain ``token`` is accepted too (development) and hashed when the
settings load (``pearls_shared.tokens.TokenEntry``). The older
``PEARLS_NOTIFICATIONS_API_TOKEN_SHA256`` and ``PEARLS_NOTIFICATIONS_COORDINATOR_TOKENS``
still work but are deprecated: their tokens join the list (as coordinators
``api_token_sha256`` and ``coordinator_tokens[N]``) and a warning is logged.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Self

import structlog
from pydantic import AnyHttpUrl, AwareDatetime, EmailStr, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pearls_notifications.domain.identity import hostname
from pearls_shared.events.common import LanguageCode
from pearls_shared.settings import ServiceSettings
from pearls_shared.token_files import FILE_SETTING_HELP, TokenFiles, TokenList
from pearls_shared.tokens import TokenBook, TokenEntry, check_distinct, hash_token

log = structlog.get_logger(__name__)

# Inside the package, so that wheels and images carry them: no setting needed.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Settings(ServiceSettings):
    # hide_input_in_errors: a refused setting must not print the others (secrets) at start-up.
    model_config = SettingsConfigDict(
        env_prefix="PEARLS_NOTIFICATIONS_", extra="ignore", hide_input_in_errors=True
    )

    # Storage and consumption
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls_notifications"),
        description="asyncpg DSN of the service's own database.",
    )
    consumer_group: str = Field(
        default="pearls-notifications", description="Kafka consumer group (and inbox name)."
    )
    consumer_batch_size: int | None = Field(
        default=100,
        ge=1,
        description="Kafka records handled per database transaction and offset commit (batch "
        "mode: one inbox INSERT, every handler on the same connection, one commit; a record "
        "that fails sends the batch back through the per-record path). 1: one transaction and "
        "one offset commit per record (about 150 records/s at most).",
    )
    not_before: AwareDatetime | None = Field(
        default=None,
        description="Events older than this update the contact directory but send no e-mail "
        "(a first deployment reading years of history must not mail everyone again).",
    )

    # SMTP
    smtp_host: str = Field(default="127.0.0.1", description="Mail server (submission) host.")
    smtp_port: int = Field(default=1025, ge=1, le=65535, description="Mail server port.")
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS after EHLO.")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (port 465 style).")
    smtp_username: str | None = Field(default=None, description="AUTH user, if required.")
    smtp_password: SecretStr | None = Field(default=None, description="AUTH password.")
    smtp_cafile: Path | None = Field(
        default=None,
        description="CA certificates (PEM) the mail server's certificate must chain to, "
        "instead of the system's trust store (for a private CA). With TLS or STARTTLS the "
        "certificate and the host name are always verified; nothing turns that off.",
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, description="Per-command SMTP timeout.")
    from_address: EmailStr = Field(
        default="pearls@bsr-cultural-pearls.example", description="Envelope and header sender."
    )
    from_name: str = Field(default="BSR Cultural Pearls", description="Display name of From.")
    message_id_domain: str | None = Field(
        default=None,
        description="Host name after the @ of every Message-ID (validated). Unset: the "
        "domain of the from address. A change applies to e-mails planned after it; each "
        "e-mail keeps its Message-ID on every attempt.",
    )
    rate_limit_per_minute: float = Field(
        default=120.0, gt=0, description="Messages per minute to the mail server, at most."
    )

    # Retries of temporary failures (4xx, connection loss)
    retry_max_attempts: int = Field(
        default=12, ge=1, description="Attempts per e-mail before it is recorded as failed."
    )
    retry_backoff_initial_s: float = Field(default=30.0, gt=0, description="First retry delay.")
    retry_backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest retry delay.")
    sender_idle_poll_s: float = Field(
        default=1.0, gt=0, description="How often the sender looks for due e-mails when idle."
    )
    sender_concurrency: int = Field(
        default=4,
        ge=1,
        description="E-mails in flight at once: sender workers, each with its own SMTP "
        "connection and, while it sends, one database connection (so less than POOL_MAX_SIZE)."
        " They share RATE_LIMIT_PER_MINUTE. E-mails may leave slightly out of due order.",
    )

    # Who hears what
    coordinator_email: EmailStr = Field(
        default="coordinators@bsr-cultural-pearls.example",
        description="The coordinators' shared mailbox.",
    )
    coordinator_name: str = Field(
        default="Programme coordinators", description="Display name of the coordinators' mailbox."
    )
    coordinator_language: LanguageCode = Field(
        default="en", description="Language of the e-mails to the coordinators' mailbox."
    )

    # Links and preferences
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8004"),
        description="Base URL of this service as recipients reach it (unsubscribe links).",
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 that signs unsubscribe links. Unset: a random "
        "key per process (links stop working after a restart; fine for development only).",
    )
    context_retention_days: float = Field(
        default=90,
        gt=0,
        description="Days after which a finished e-mail's rendering data (names, event "
        "content) is erased; the log row (who, what, when, outcome) stays.",
    )
    digest_hour_utc: int = Field(
        default=7, ge=0, le=23, description="Hour (UTC) at which daily digests are sent."
    )

    # Coordinator API: only digests are kept in memory, plain tokens are hashed at load.
    coordinators: list[TokenEntry] = Field(
        default_factory=list,
        description="Coordinators and their hashed tokens (JSON list, as in every service). "
        "With no coordinator (here or in the deprecated settings) the API is closed.",
    )
    coordinators_file: Path | None = Field(
        default=None, description=f"Coordinators: {FILE_SETTING_HELP}"
    )
    api_token_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Deprecated, use COORDINATORS: hex SHA-256 of one coordinators' token.",
    )
    coordinator_tokens: SecretStr | None = Field(
        default=None,
        description="Deprecated, use COORDINATORS: more coordinator tokens, comma-separated, "
        "'sha256:<hex digest>' or a plain token (development).",
    )
    migrations_dir: Path = Field(
        default=MIGRATIONS_DIR, description="Folder of the service's SQL migrations."
    )

    # HTTP (host, log level and format as every service: pearls_shared.settings.ServiceSettings)
    http_port: int = Field(default=8004, ge=1, le=65535, description="Port uvicorn binds.")

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("smtp_tls and smtp_starttls: choose one (implicit TLS or STARTTLS)")
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("smtp_password: given without smtp_username")
        if self.smtp_username and not (self.smtp_tls or self.smtp_starttls):
            raise ValueError(
                "smtp_username: AUTH needs smtp_tls or smtp_starttls "
                "(without TLS the password would cross the network in clear text)"
            )
        if self.smtp_cafile is not None and not self.smtp_cafile.is_file():
            raise ValueError(f"smtp_cafile: {self.smtp_cafile} is not a readable file")
        try:
            if self.message_id_domain is not None:
                self.message_id_domain = hostname(self.message_id_domain)
            self.message_id_host()  # unset: the sender's domain, which must be one too
        except ValueError as exc:
            raise ValueError(f"message_id_domain: {exc}") from None
        return self

    @model_validator(mode="after")
    def _sender_fits_pool(self) -> Self:
        # Each worker holds a connection across its SMTP call; the consumer and the API
        # need one too, or they would wait for the mail server.
        if self.sender_concurrency >= self.pool_max_size:
            raise ValueError(
                f"sender_concurrency: {self.sender_concurrency} must be less than "
                f"pool_max_size ({self.pool_max_size})"
            )
        return self

    def message_id_host(self) -> str:
        """The host name of every Message-ID: the setting, else the sender's domain."""
        if self.message_id_domain is not None:
            return self.message_id_domain
        return hostname(str(self.from_address).rpartition("@")[2])

    @model_validator(mode="after")
    def _one_token_book(self) -> Self:
        # A shared token or id would make the audit trail name the wrong person.
        check_distinct({"coordinator": self.coordinators})
        self._legacy_coordinators()  # malformed entries fail at start-up
        return self

    def _legacy_coordinators(self) -> list[TokenEntry]:
        """Entries for the deprecated ``api_token_sha256`` and ``coordinator_tokens``."""
        entries: list[TokenEntry] = []
        if self.api_token_sha256:
            entries.append(TokenEntry(id="api_token_sha256", token_sha256=self.api_token_sha256))
        raw = self.coordinator_tokens.get_secret_value() if self.coordinator_tokens else ""
        listed = [e.strip() for e in raw.split(",") if e.strip()]
        for number, entry in enumerate(listed, start=1):
            if entry.startswith("sha256:"):
                digest = entry.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError("coordinator_tokens: 'sha256:' must be followed by 64 hex")
            else:
                digest = hash_token(entry).hex()
            entries.append(TokenEntry(id=f"coordinator_tokens[{number}]", token_sha256=digest))
        return entries

    def coordinator_entries(self) -> list[TokenEntry]:
        """Every coordinator: the list, then the deprecated settings' tokens not in it."""
        entries = list(self.coordinators)
        seen = {entry.digest for entry in entries}
        for entry in self._legacy_coordinators():
            if entry.digest not in seen:
                seen.add(entry.digest)
                entries.append(entry)
        return entries

    def token_digests(self) -> tuple[bytes, ...]:
        """SHA-256 digests of every accepted coordinator token."""
        return tuple(entry.digest for entry in self.coordinator_entries())

    def coordinator_book(self) -> TokenBook[str]:
        """Constant-time lookup of the coordinators' tokens; answers the coordinator's id.

        Follows ``coordinators_file`` (see ``coordinator_files``)."""
        return self.coordinator_files().book

    def coordinator_files(self) -> TokenFiles[str]:
        """The coordinators' tokens from the settings and ``coordinators_file``, read again
        when the file changes or on SIGHUP; its ``book`` answers the coordinator's id.

        Built once by the app (after logging is configured): says so if the deprecated
        settings are still in use."""
        legacy = self._legacy_coordinators()
        if legacy:
            log.warning(
                "deprecated_setting",
                settings=sorted({entry.id.split("[")[0] for entry in legacy}),
                use="PEARLS_NOTIFICATIONS_COORDINATORS",
                effect="their tokens are accepted as coordinators' tokens",
            )
        return TokenFiles(
            [
                TokenList(
                    "coordinator", TokenEntry, self.coordinator_entries(), self.coordinators_file
                )
            ],
            lambda _kind, entry: entry.id,
            service="notifications",
        )

    def unsubscribe_key(self) -> bytes:
        if self.unsubscribe_secret is None:
            return _PROCESS_KEY
        return self.unsubscribe_secret.get_secret_value().encode()


# Used only when no secret is configured: unforgeable, but valid until restart.
_PROCESS_KEY = secrets.token_bytes(32)
