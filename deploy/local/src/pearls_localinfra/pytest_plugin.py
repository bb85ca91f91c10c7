"""pytest plugin: real Kafka and PostgreSQL for integration tests, started on first use.

Each resource comes from the first source that works:

1. the environment: `KAFKA_BOOTSTRAP_SERVERS`, `PEARLS_TEST_POSTGRES_DSN` (a superuser DSN);
   when set, nothing else is tried;
2. Docker through testcontainers, when an engine answers;
3. the local launchers (Java 17 + Maven for Kafka, PostgreSQL server binaries); also the
   fallback when a container fails to start.

`PEARLS_INFRA_SOURCE=docker|local` restricts steps 2-3 to one source. When nothing works
the requesting tests fail (they never skip) with what is missing and how to install it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import pytest

from pearls_localinfra._kafkawire import live_broker_ids
from pearls_localinfra._proc import cache_dir, wait_until
from pearls_localinfra.acl import PEARLS_SERVICES, ServiceAccess, with_groups
from pearls_localinfra.kafka import KafkaCluster, KafkaSecurity, java_executable, kafka_version
from pearls_localinfra.pgserver import PostgresServer
from pearls_localinfra.postgres import PostgresCluster, find_pg_bin

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
POSTGRES_ENV = "PEARLS_TEST_POSTGRES_DSN"
SOURCE_ENV = "PEARLS_INFRA_SOURCE"

T = TypeVar("T")
Started = tuple[T, Callable[[], None]]  # the resource and how to stop it


# -- what is available ---------------------------------------------------------------------


def kafka_local_missing() -> list[str]:
    """What the local Kafka launcher lacks on this machine (empty: it can run)."""
    missing = []
    if java_executable() is None:
        missing.append("`java` (Java 17+)")
    jars = cache_dir() / f"kafka-{kafka_version()}" / "libs" / ".pearls-complete"
    if not jars.exists() and shutil.which("mvn") is None:
        missing.append("`mvn` (Maven, to download the broker jars once)")
    return missing


def postgres_local_missing() -> list[str]:
    pg_bin = find_pg_bin()
    if pg_bin is None or not (pg_bin / "initdb").exists():
        where = os.environ.get("PEARLS_PG_BIN") or "/usr/lib/postgresql/*/bin or PATH"
        return [f"PostgreSQL server binaries (`initdb`, `pg_ctl`; looked in {where})"]
    return []


@cache
def docker_answers() -> bool:
    from pearls_localinfra.containers import docker_available

    return docker_available()


def candidates(env_var: str, local_ok: bool) -> list[str]:
    """Sources to try, in order: "env", "docker", "local"."""
    if os.environ.get(env_var):
        return ["env"]
    forced = os.environ.get(SOURCE_ENV, "").strip().lower()
    found = []
    if forced == "docker" or (forced != "local" and docker_answers()):
        found.append("docker")
    if forced != "docker" and local_ok:
        found.append("local")
    return found


def kafka_candidates() -> list[str]:
    return candidates(KAFKA_ENV, not kafka_local_missing())


def postgres_candidates() -> list[str]:
    return candidates(POSTGRES_ENV, not postgres_local_missing())


def _docker_state() -> str:
    forced = os.environ.get(SOURCE_ENV, "").strip().lower()
    if forced == "local":
        return f"Docker is not tried ({SOURCE_ENV}=local)"
    return "no Docker engine answers"


def kafka_missing_message() -> str:
    lacks = ", ".join(kafka_local_missing()) or "nothing"
    return (
        f"No Kafka for the tests: {KAFKA_ENV} is unset, {_docker_state()}, and the local "
        f"launcher lacks {lacks}. Do one of: install Java 17+ and Maven "
        "(`apt-get install openjdk-17-jre-headless maven`, `brew install openjdk@17 maven`); "
        f"start a Docker engine (tests then use testcontainers); or export {KAFKA_ENV}=host:port "
        "of a running Kafka 4.x broker."
    )


def postgres_missing_message() -> str:
    lacks = ", ".join(postgres_local_missing()) or "nothing"
    return (
        f"No PostgreSQL for the tests: {POSTGRES_ENV} is unset, {_docker_state()}, and the "
        f"local launcher lacks {lacks}. Do one of: install the server "
        "(`apt-get install postgresql`, `brew install postgresql@15`, or set PEARLS_PG_BIN "
        "to the directory holding initdb); start a Docker engine (tests then use "
        f"testcontainers); or export {POSTGRES_ENV}=postgresql://<superuser>:<pw>@host:port/postgres."
    )


def _describe(found: list[str]) -> str:
    return " (falls back to local)" if found == ["docker", "local"] else ""


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for name, found in (("kafka", kafka_candidates()), ("postgres", postgres_candidates())):
        first = found[0] if found else "MISSING (tests that need it will fail)"
        lines.append(f"pearls-infra {name}: {first}{_describe(found)}")
    return lines


# -- starting ------------------------------------------------------------------------------


def _announce(config: pytest.Config, message: str) -> None:
    """Print past output capture: a session fixture starts inside some test's setup."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(f"[pearls-infra] {message}", file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[pearls-infra] {message}")


# Which source served each resource ("kafka", "postgres" -> "env", "docker", "local").
SOURCES = pytest.StashKey[dict[str, str]]()


def _first_that_starts(
    config: pytest.Config,
    found: list[str],
    start: Callable[[str], Started[T]],
    missing: Callable[[], str],
    resource: str,
) -> Started[T]:
    errors = []
    forced = os.environ.get(SOURCE_ENV, "").strip().lower()
    for source in found:
        try:
            started = start(source)
            config.stash.setdefault(SOURCES, {})[resource] = source
            return started
        except Exception as exc:
            if forced and source == forced:
                # Asked for this source: its failure is the answer, not a fallback.
                pytest.fail(f"[{source}, as {SOURCE_ENV} asks] {exc}", pytrace=False)
            errors.append(f"[{source}] {exc}")
            if source != found[-1]:
                _announce(config, f"{source} failed, trying the next source: {exc}")
    if not found:
        pytest.fail(missing(), pytrace=False)
    pytest.fail("\n".join(errors), pytrace=False)


def _start_kafka(config: pytest.Config, workdir: Path, source: str) -> Started[str]:
    if source == "env":
        servers = os.environ[KAFKA_ENV]
        host, _, port = servers.split(",")[0].strip().rpartition(":")
        if not wait_until(lambda: live_broker_ids(host, int(port)) is not None, 15.0, 0.5):
            raise RuntimeError(f"{KAFKA_ENV}={servers} does not answer Kafka requests")
        _announce(config, f"Kafka from {KAFKA_ENV}: {servers}")
        return servers, lambda: None
    if source == "docker":
        from pearls_localinfra.containers import KafkaContainerBroker

        broker = KafkaContainerBroker()
        broker.start()
        _announce(config, f"Kafka in Docker ({broker.image}): {broker.bootstrap_servers}")
        return broker.bootstrap_servers, broker.stop
    cluster = KafkaCluster(nodes=1, workdir=workdir)
    cluster.start()
    _announce(config, f"Kafka (local, logs in {workdir}): {cluster.bootstrap_servers}")
    return cluster.bootstrap_servers, cluster.stop


def _start_postgres(config: pytest.Config, source: str) -> Started[PostgresServer]:
    if source == "env":
        server = PostgresServer(os.environ[POSTGRES_ENV], "env", drop_on_close=True)
        server.ping()  # a bad DSN fails here, once, not in every test
        _announce(config, f"PostgreSQL from {POSTGRES_ENV}")
        return server, server.close
    if source == "docker":
        from pearls_localinfra.containers import PostgresContainerServer

        container = PostgresContainerServer()
        container.start()
        _announce(config, f"PostgreSQL in Docker ({container.image})")
        return PostgresServer(container.superuser_dsn, "docker"), container.stop
    # Not under pytest's tmp dir: as root the server runs as another user, and
    # /tmp/pytest-of-root is private to root.
    cluster = PostgresCluster()
    cluster.start()
    _announce(config, f"PostgreSQL (local): {cluster.host}:{cluster.port}")
    return PostgresServer(cluster.superuser_dsn, "local"), cluster.stop


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`host:port` of a running single-node Kafka 4.x (replication factor 1)."""
    # Under pytest's tmp dir, so the broker logs outlive a failed run.
    workdir = tmp_path_factory.mktemp("kafka")
    servers, stop = _first_that_starts(
        request.config,
        kafka_candidates(),
        lambda source: _start_kafka(request.config, workdir, source),
        kafka_missing_message,
        "kafka",
    )
    try:
        yield servers
    finally:
        stop()


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A PostgreSQL server: `new_database(prefix)` / `await new_database_async(prefix)`
    return the DSN of a fresh database owned by its own login role."""
    server, stop = _first_that_starts(
        request.config,
        postgres_candidates(),
        lambda source: _start_postgres(request.config, source),
        postgres_missing_message,
        "postgres",
    )
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def infra_sources(
    request: pytest.FixtureRequest, kafka_bootstrap_servers: str, postgres_server: PostgresServer
) -> dict[str, str]:
    """Where Kafka and PostgreSQL came from this run: "env", "docker" or "local" each."""
    found: dict[str, str] = request.config.stash[SOURCES]
    return dict(found)


@pytest.fixture(scope="session")
def kafka_cluster3(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaCluster]:
    """A local 3-node KRaft cluster (node ids 1..3, RF 3, min.insync.replicas 2) for
    replication and fault tests: `bootstrap_servers`, `stop_node(id, kill=)`, `start_node(id)`."""
    if missing := kafka_local_missing():
        pytest.fail(
            f"The 3-node Kafka cluster runs locally only and needs {', '.join(missing)}: "
            "install Java 17+ and Maven (`apt-get install openjdk-17-jre-headless maven`).",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("kafka3")
    cluster = KafkaCluster(nodes=3, workdir=workdir)
    try:
        cluster.start()
    except Exception as exc:
        pytest.fail(f"the 3-node Kafka cluster failed to start: {exc}", pytrace=False)
    _announce(
        request.config, f"Kafka 3-node (local, logs in {workdir}): {cluster.bootstrap_servers}"
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass(frozen=True)
class SecureKafka:
    """The secured local broker as tests see it: its SASL_SSL address, the CA file that
    verifies it, one SCRAM-SHA-512 user per service with the ACLs of `pearls_localinfra.acl`
    (consumer groups by prefix: `<service group>-<anything>`), an administrator and a
    user with no rights at all."""

    cluster: KafkaCluster
    security: KafkaSecurity
    services: tuple[ServiceAccess, ...]
    stranger: str = "pearls-stranger"

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.secure_bootstrap_servers

    @property
    def ca_file(self) -> str:
        return str(self.cluster.ca_file)

    @property
    def admin_user(self) -> str:
        return self.security.admin_user

    def access(self, service: str) -> ServiceAccess:
        [found] = [a for a in self.services if a.service == service]
        return found

    def password(self, user: str) -> str:
        return self.security.password(user)


@pytest.fixture(scope="session")
def kafka_secure(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureKafka]:
    """A local single-node Kafka with a SASL_SSL listener beside its PLAINTEXT one, started
    on first use and only for the tests that ask for it. Always the local launcher: a broker
    from the environment or Docker does not carry these users and ACLs."""
    if missing := kafka_local_missing():
        pytest.fail(
            f"The secured Kafka runs locally only and needs {', '.join(missing)}: "
            "install Java 17+ and Maven (`apt-get install openjdk-17-jre-headless maven`).",
            pytrace=False,
        )
    services = with_groups(PEARLS_SERVICES, pattern="PREFIXED")
    security = KafkaSecurity.for_pearls(services, extra_users=[SecureKafka.stranger])
    workdir = tmp_path_factory.mktemp("kafka-secure")
    cluster = KafkaCluster(nodes=1, workdir=workdir, security=security)
    try:
        cluster.start()
    except Exception as exc:
        pytest.fail(f"the secured Kafka (SASL_SSL) failed to start: {exc}", pytrace=False)
    _announce(
        request.config,
        f"Kafka SASL_SSL (local, logs in {workdir}): {cluster.secure_bootstrap_servers}",
    )
    try:
        yield SecureKafka(cluster, security, services)
    finally:
        cluster.stop()
