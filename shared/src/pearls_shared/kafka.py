"""Kafka clients built from settings, used by services and tests alike.

The producer side is always idempotent with ``acks=all``: both are off by
default in aiokafka and faststream, and without them a retried send can
duplicate or reorder records of one key.

:func:`check_connection` is the start-up check: aiokafka reports a refused
password or an untrusted certificate only as "Unable to bootstrap from
[...]" (the reason goes to a log line), so a service that calls it first
fails with a :class:`KafkaStartupError` that names the address and the cause.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
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


def bootstrap_list(settings: KafkaSettings) -> list[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` as the list of ``host:port`` it names."""
    return [part.strip() for part in settings.bootstrap_servers.split(",") if part.strip()]


def new_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """A faststream broker for consumers and direct publishes (dead letters).

    No ``transactional_id``: faststream has no Kafka transactions and every
    normal publish would fail with one set.
    """
    return KafkaBroker(
        # A list: faststream wraps a string in one, and aiokafka splits only plain
        # strings, so "a:9092,b:9092" would be read as one host "a:9092,b" on port 9092.
        bootstrap_list(settings),
        client_id=client_id,
        security=_security(settings),
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        # Per-record "Received"/"Processed" lines at DEBUG: the consumer logs what matters.
        log_level=logging.DEBUG,
    )


class KafkaStartupError(RuntimeError):
    """Kafka cannot be used with these settings; the message says why, in one line."""


def _password_of(settings: KafkaSettings) -> str | None:
    return settings.sasl_password.get_secret_value() if settings.sasl_password else None


def _misconfiguration(settings: KafkaSettings) -> str | None:
    protocol = settings.security_protocol
    if protocol.startswith("SASL") and not (settings.sasl_username and _password_of(settings)):
        return (
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and"
            " KAFKA_SASL_PASSWORD (one Kafka user per service)"
        )
    if protocol in ("SSL", "SASL_SSL"):
        try:
            _ssl_context(settings)
        except (OSError, ssl.SSLError) as exc:
            return (
                "the TLS settings of Kafka cannot be loaded"
                f" (KAFKA_SSL_CAFILE={settings.ssl_cafile}): {exc}"
            )
    return None


def _reason(settings: KafkaSettings, address: str, exc: BaseException, timeout: float) -> str:
    """One line naming the broker address, what failed and which settings to check."""
    protocol = settings.security_protocol
    if isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError):
        detail = str(exc).split(": ", 1)[-1]
        return (
            f"Kafka authentication failed at {address} for user {settings.sasl_username!r}"
            f" ({settings.sasl_mechanism} over {protocol}): {detail}."
            " Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"Kafka broker {address} does not accept SASL mechanism {settings.sasl_mechanism}."
            " Check KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        cafile = settings.ssl_cafile or "the system's default CAs"
        return (
            f"TLS verification of Kafka broker {address} failed: {exc.verify_message}"
            f" (trusted: {cafile}). Check KAFKA_SSL_CAFILE"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake with Kafka broker {address} failed: {exc.reason or exc}."
            f" Is it a TLS listener (KAFKA_SECURITY_PROTOCOL={protocol})?"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"Kafka broker {address} did not complete the {protocol} handshake within"
            f" {timeout:g}s. Check KAFKA_BOOTSTRAP_SERVERS and KAFKA_SECURITY_PROTOCOL"
        )
    if isinstance(exc, OSError):
        return f"cannot connect to Kafka broker {address}: {exc.strerror or exc}"
    return (
        f"Kafka broker {address} ended the {protocol} handshake: {exc}."
        " Check KAFKA_SECURITY_PROTOCOL (does the listener expect TLS or SASL?)"
    )


# Auth and TLS failures say more than "unreachable": report them first.
def _weight(exc: BaseException) -> int:
    if isinstance(exc, KafkaError | ssl.SSLError):
        return 0
    return 1 if isinstance(exc, TimeoutError) else 2


async def check_connection(
    settings: KafkaSettings, *, timeout_s: float = 15.0, client_id: str = "pearls"
) -> None:
    """Connect to the bootstrap servers, TLS and SASL included, within ``timeout_s`` seconds
    per address; return once one of them accepts these settings.

    Raises :class:`KafkaStartupError` with a one-line reason naming the address: wrong
    credentials, an untrusted certificate, a TLS/plaintext mismatch, no answer.
    """
    if problem := _misconfiguration(settings):
        raise KafkaStartupError(problem)
    options = client_options(settings, client_id)
    failures: list[tuple[str, BaseException]] = []
    for host, port, _family in collect_hosts(settings.bootstrap_servers):
        address = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id=client_id,
                    request_timeout_ms=int(timeout_s * 1000),
                    ssl_context=options.get("ssl_context"),
                    security_protocol=settings.security_protocol,
                    sasl_mechanism=options.get("sasl_mechanism"),
                    sasl_plain_username=options.get("sasl_plain_username"),
                    sasl_plain_password=options.get("sasl_plain_password"),
                ),
                timeout_s,
            )
        except (OSError, TimeoutError, KafkaError) as exc:
            failures.append((address, exc))
            continue
        conn.close()
        return
    if not failures:
        raise KafkaStartupError(
            f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers!r} names no broker"
        )
    address, error = min(failures, key=lambda failure: _weight(failure[1]))
    raise KafkaStartupError(_reason(settings, address, error, timeout_s)) from error
