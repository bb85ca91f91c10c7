"""Kafka clients built from settings, used by services and tests alike.

The producer side is always idempotent with ``acks=all``: both are off by
default in aiokafka and faststream, and without them a retried send can
duplicate or reorder records of one key.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from pearls_shared.settings import KafkaSettings


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


def client_options(settings: KafkaSettings, client_id: str = "pearls") -> dict[str, Any]:
    """Connection options common to aiokafka's producer, consumer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
        "security_protocol": settings.security_protocol,
    }
    context = _ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def new_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer (``acks=all``): per-partition order survives retries."""
    return AIOKafkaProducer(
        **client_options(settings, client_id),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


def _security(settings: KafkaSettings) -> BaseSecurity | None:
    context = _ssl_context(settings)
    if settings.security_protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if settings.security_protocol.startswith("SASL"):
        username = settings.sasl_username or ""
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        use_ssl = settings.security_protocol == "SASL_SSL"
        kind = {
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
            "PLAIN": SASLPlaintext,
        }[settings.sasl_mechanism]
        return kind(username, password, ssl_context=context, use_ssl=use_ssl)
    return None


def new_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """A faststream broker for consumers and direct publishes (dead letters).

    No ``transactional_id``: faststream has no Kafka transactions and every
    normal publish would fail with one set.
    """
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        security=_security(settings),
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        # Per-record "Received"/"Processed" lines at DEBUG: the consumer logs what matters.
        log_level=logging.DEBUG,
    )
