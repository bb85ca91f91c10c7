"""Broker and producer options derived from settings (plaintext, SASL/SCRAM, TLS)."""

from __future__ import annotations

import ssl

import pytest
from pydantic import SecretStr

from pearls_shared.kafka import client_options, new_producer
from pearls_shared.settings import KafkaSettings


def test_plaintext_for_local_work() -> None:
    options = client_options(KafkaSettings(bootstrap_servers="127.0.0.1:9092"))
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert "sasl_mechanism" not in options


def test_sasl_scram_over_tls_for_production() -> None:
    settings = KafkaSettings(
        bootstrap_servers="kafka-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="pearls-applications",
        sasl_password=SecretStr("s3cret"),
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "pearls-applications"
    assert options["sasl_plain_password"] == "s3cret"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2")
    monkeypatch.setenv("KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "2")
    settings = KafkaSettings()
    assert settings.bootstrap_servers == "a:1,b:2"
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)


async def test_producers_are_idempotent_with_acks_all() -> None:
    # aiokafka has no public accessors: an idempotent producer is the one with a
    # transaction manager (it tracks sequence numbers), and acks "all" is -1.
    producer = new_producer(KafkaSettings(), client_id="t")
    try:
        assert producer._txn_manager is not None
        assert producer._sender._acks == -1
    finally:
        await producer.stop()
