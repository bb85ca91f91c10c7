"""Settings shared by every service, read from environment variables.

Each service builds its own settings class on top of these with its own
prefix (``PEARLS_APPLICATIONS_`` …); Kafka settings are common to all
services and use the ``KAFKA_`` prefix so one broker address serves the lot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach Kafka and how topics are created."""

    model_config = SettingsConfigDict(
        env_prefix="KAFKA_", extra="ignore", hide_input_in_errors=True
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT for local work; SASL_SSL in production."
    )
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism with SASL_SSL or SASL_PLAINTEXT; SCRAM-SHA-512 in production.",
    )
    sasl_username: str | None = Field(
        default=None, description="SASL user of this service (one Kafka user per service)."
    )
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: str | None = Field(default=None, description="CA bundle for TLS.")
    ssl_certfile: str | None = Field(
        default=None, description="Client certificate for TLS client authentication (PEM)."
    )
    ssl_keyfile: str | None = Field(
        default=None, description="Private key of the client certificate (PEM)."
    )
    topic_partitions: int = Field(default=3, ge=1, description="Partitions per Pearls topic.")
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of each topic created; 3 in production."
    )
    topic_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="min.insync.replicas of each topic created; 2 in production (with acks=all,"
        " a write needs that many replicas).",
    )
    dead_letter_suffix: str = Field(
        default=".dlq", description="Dead-letter topic = original topic + this suffix."
    )
    topic_retention_ms: int = Field(
        default=63_072_000_000,
        ge=-1,
        description="retention.ms of each event topic created: how long events are kept (-1:"
        " forever). Default 730 days, longer than one programme cycle (call to award), so a"
        " read model can be rebuilt from the topics; personal data in old events leaves Kafka"
        " after it (see README, Topics).",
    )
    dead_letter_retention_ms: int = Field(
        default=7_776_000_000,
        ge=-1,
        description="retention.ms of each dead-letter topic created (-1: forever). Default 90"
        " days to look into, fix and replay a dead letter.",
    )

    @field_validator("topic_retention_ms", "dead_letter_retention_ms")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value == 0 or 0 < value < 3_600_000:
            raise ValueError("must be -1 (forever) or at least 3600000 (one hour)")
        return value


class PostgresSettings(BaseModel):
    """Connection pool for one service's own database, built from that service's settings
    (``PEARLS_<SERVICE>_DATABASE_URL``, ``…_POOL_MIN_SIZE``, ``…_POOL_MAX_SIZE``)."""

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls"),
        description="asyncpg DSN of this service's own database.",
    )
    pool_min_size: int = Field(default=1, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=10, ge=1, description="Most connections open at once.")


class DeliverySettings(BaseSettings):
    """Outbox relay and consumer retry behaviour (``PEARLS_DELIVERY_*``, all services)."""

    model_config = SettingsConfigDict(env_prefix="PEARLS_DELIVERY_", extra="ignore")

    relay_batch_size: int = Field(
        default=200, ge=1, description="Outbox rows the relay publishes per round."
    )
    relay_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Fallback poll when no NOTIFY arrives."
    )
    relay_drain_s: float = Field(
        default=10.0,
        ge=0,
        description="On a clean stop, how long the relay keeps publishing what is pending"
        " before it closes (the rest goes out at the next start).",
    )
    relay_retention_s: float = Field(
        default=24 * 3600.0, ge=0, description="How long sent outbox rows are kept."
    )
    inbox_retention_s: float = Field(
        default=760 * 24 * 3600.0,
        ge=0,
        description="How long handled event ids are remembered (default 760 days); keep it"
        " above the topics' retention (KAFKA_TOPIC_RETENTION_MS), or an old event read again"
        " (a group reset to the start) would take effect again; a service warns at start"
        " when it is not.",
    )
    consumer_max_attempts: int = Field(
        default=5, ge=1, description="Handler attempts before a message is dead-lettered."
    )
    consumer_backoff_initial_s: float = Field(
        default=0.2, ge=0, description="Wait before a failed handler's first retry (doubling)."
    )
    consumer_backoff_max_s: float = Field(
        default=5.0, ge=0, description="Longest wait between a failed handler's retries."
    )


class HttpSettings(BaseSettings):
    """Bounds on what one HTTP request may hold (``PEARLS_HTTP_*``, all services).

    Enforced by ``pearls_shared.http.install_http`` before any endpoint runs."""

    model_config = SettingsConfigDict(env_prefix="PEARLS_HTTP_", extra="ignore")

    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Largest request body accepted, in bytes; larger ones get 413 before"
        " they are read (Content-Length) or as soon as they pass it (chunked).",
    )
    max_json_depth: int = Field(
        default=32,
        ge=1,
        le=512,
        description="Deepest nesting of arrays and objects in a JSON body; deeper gets 422.",
    )


class TracingSettings(BaseSettings):
    """OpenTelemetry tracing (``PEARLS_TRACING_*``, all services).

    Spans are always recorded, so trace ids reach Kafka headers, logs and delivery
    records; they leave the process only when export is on: ``export=true``, or the
    standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    variables set (the OTLP/HTTP exporter reads those, and the other ``OTEL_*``
    exporter variables, itself)."""

    model_config = SettingsConfigDict(env_prefix="PEARLS_TRACING_", extra="ignore")

    export: bool = Field(default=False, description="Export spans over OTLP/HTTP (off by default).")
    otlp_endpoint: str | None = Field(
        default=None,
        description="Full OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces);"
        " unset: the exporter's own default or OTEL_EXPORTER_OTLP_* variables.",
    )
    service_name: str | None = Field(
        default=None,
        description="service.name of the exported spans; unset: pearls-<service>.",
    )

    def exporting(self) -> bool:
        return (
            self.export
            or self.otlp_endpoint is not None
            or bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
            or bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        )


class ServiceSettings(BaseSettings):
    """What every service's settings share. A service subclasses it with its own
    ``env_prefix`` (``PEARLS_<SERVICE>_``), database default and port."""

    # A refused value is named, never echoed: the inputs hold passwords and tokens.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://pearls@127.0.0.1:5432/pearls"),
        description="asyncpg DSN of the service's own database.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address uvicorn binds.")
    http_port: int = Field(default=8000, ge=1, le=65535, description="Port uvicorn binds.")
    log_level: str = Field(default="INFO", description="Log level of the service.")
    log_json: bool = Field(default=True, description="JSON log lines (false: console).")
    migrations_dir: Path | None = Field(default=None, description="Service SQL migrations.")
    pool_min_size: int = Field(default=1, ge=0, description="Database connections kept open.")
    pool_max_size: int = Field(
        default=10, ge=1, description="Most database connections open at once."
    )
    consumer_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Kafka records the service's consumers handle per database transaction"
        " and offset commit (batch mode: one inbox INSERT for the batch, every handler on the"
        " same connection, one commit; a record that fails sends the batch back through the"
        " per-record path). Unset or 1: one transaction and one offset commit per record.",
    )

    def postgres(self) -> PostgresSettings:
        return PostgresSettings(
            database_url=self.database_url,
            pool_min_size=self.pool_min_size,
            pool_max_size=self.pool_max_size,
        )

    def kafka(self) -> KafkaSettings:
        return KafkaSettings()

    def delivery(self) -> DeliverySettings:
        return DeliverySettings()

    def http(self) -> HttpSettings:
        return HttpSettings()
