"""Docker-free Kafka and PostgreSQL for development and tests."""

from pearls_localinfra.kafka import KafkaCluster, KafkaError, ensure_kafka_classpath
from pearls_localinfra.pgserver import PostgresServer
from pearls_localinfra.postgres import PostgresCluster, PostgresError

__all__ = [
    "KafkaCluster",
    "KafkaError",
    "PostgresCluster",
    "PostgresError",
    "PostgresServer",
    "ensure_kafka_classpath",
]
