"""Kafka and PostgreSQL in Docker through testcontainers, where a Docker engine answers.

testcontainers is imported lazily: it is a dev dependency, and most machines that run
the plugin never get this far. Its `KafkaContainer` only drives Confluent images (its
start script calls /etc/confluent/docker/*, and `with_kraft()` rejects tags below 7.0),
so the official apache/kafka image is configured here through its KAFKA_* variables.

The images are the official ones unless ``PEARLS_KAFKA_IMAGE`` / ``PEARLS_POSTGRES_IMAGE``
name others: the local images of deploy/images (same conventions) on a machine that
reaches no registry. Ryuk, testcontainers' reaper, is an image of its own from a
registry, so it is off unless ``TESTCONTAINERS_RYUK_DISABLED`` says otherwise; every
container is stopped by the fixture that started it. Ports bind 127.0.0.1 only.
"""

from __future__ import annotations

import os
from typing import Any

from pearls_localinfra._kafkawire import live_broker_ids
from pearls_localinfra._proc import free_ports, wait_until
from pearls_localinfra.kafka import random_cluster_id

KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:15"
LOOPBACK = "127.0.0.1"


def kafka_image() -> str:
    return os.environ.get("PEARLS_KAFKA_IMAGE") or KAFKA_IMAGE


def postgres_image() -> str:
    return os.environ.get("PEARLS_POSTGRES_IMAGE") or POSTGRES_IMAGE


def _no_reaper() -> None:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


class ContainerError(RuntimeError):
    """A container did not come up."""


def docker_available(timeout: float = 3.0) -> bool:
    """True when the docker SDK is installed and an engine answers a ping."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class KafkaContainerBroker:
    """A single KRaft broker+controller from the official apache/kafka image.

    The host port is chosen up front and bound 1:1, because the broker must advertise
    the address clients reach it at before the container exists.
    """

    def __init__(self, image: str | None = None, startup_timeout: float = 120.0) -> None:
        self.image = image or kafka_image()
        self.startup_timeout = startup_timeout
        self.bootstrap_servers = ""
        self._container: Any = None

    def start(self) -> None:
        _no_reaper()
        from testcontainers.core.container import DockerContainer

        host = LOOPBACK
        port = free_ports(1)[0]
        env = {
            "CLUSTER_ID": random_cluster_id(),
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            # PLAINTEXT for clients on the host, BROKER for the broker's own connections.
            "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port},BROKER://localhost:9093",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_NUM_PARTITIONS": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        }
        container = DockerContainer(self.image).with_bind_ports(9092, port).with_envs(**env)
        # On loopback only (docker-py takes an address with the port).
        container.ports["9092"] = (LOOPBACK, port)  # type: ignore[assignment]
        self._container = container.start()
        if not wait_until(lambda: bool(live_broker_ids(host, port)), self.startup_timeout, 0.5):
            logs = b"".join(self._container.get_logs()).decode("utf-8", "replace")[-3000:]
            self.stop()
            raise ContainerError(f"{self.image} did not serve metadata at {host}:{port}:\n{logs}")
        self.bootstrap_servers = f"{host}:{port}"

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None


class PostgresContainerServer:
    """The official postgres image; `superuser_dsn` is an asyncpg/libpq URL."""

    def __init__(self, image: str | None = None) -> None:
        self.image = image or postgres_image()
        self.superuser_dsn = ""
        self._container: Any = None

    def start(self) -> None:
        _no_reaper()
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # older testcontainers releases keep it at the top level
            from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(
            self.image,
            username="postgres",
            password="postgres",  # noqa: S106 - throwaway container
            dbname="postgres",
        ).with_command("postgres -c fsync=off -c full_page_writes=off -c max_connections=200")
        # On loopback only, on a port chosen here (testcontainers would publish on every
        # interface).
        container.ports = {"5432": (LOOPBACK, free_ports(1)[0])}  # type: ignore[dict-item]
        self._container = container.start()
        self.superuser_dsn = self._container.get_connection_url(host=LOOPBACK, driver=None)

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None
