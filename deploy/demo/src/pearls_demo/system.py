"""The whole Pearls system on this machine, without the demo: ``async with System(...)``.

PostgreSQL (one database and role per service), Kafka 4 (KRaft), an SMTP sink
whose captured mail can be read in a browser, and the four services as real
processes, every server on a free loopback port. Leaving the ``async with``
stops them in order (services, sink, Kafka, PostgreSQL) and throws the
databases' and Kafka's data away; the logs stay. `pearls-demo` plays its demo
on it, the end-to-end tests drive it through the same public HTTP APIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pearls_demo.processes import Child, python_module, wait_ready
from pearls_localinfra.kafka import KafkaCluster
from pearls_localinfra.postgres import PostgresCluster

SERVICES = ("applications", "mentoring", "awards", "notifications")
COORDINATOR_TOKEN = "demo-coordinator-token"  # noqa: S105 - local system only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(name: str) -> str:
    """A console script of this environment, even when its bin/ is not on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


class System:
    """Infrastructure, SMTP sink and services, started on ``async with``.

    ``urls`` maps each service to its base URL; ``mail_url`` is the captured-mail
    page, ``mail_dir`` holds the same mail as ``.eml`` files.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        mail_port: int | None = None,
        coordinator_token: str = COORDINATOR_TOKEN,
        say: Callable[[str], None] = print,
        kafka_nodes: int = 1,
        service_env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.workdir = workdir
        # 3: a KRaft cluster of three nodes, topics replicated 3 times, min.insync.replicas 2.
        self.kafka_nodes = kafka_nodes
        # More settings per service (by name), over the ones the system chooses.
        self.service_env = service_env or {}
        self.coordinator_token = coordinator_token
        self.say = say
        self.log_dir = workdir / "logs"
        self.mail_dir = workdir / "mail"
        self.mail_url = f"http://127.0.0.1:{mail_port or free_port()}/"
        self.ports = {name: free_port() for name in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.bootstrap_servers = ""
        self.sink: Child | None = None
        self.services: list[Child] = []
        self._kafka: KafkaCluster | None = None
        self._postgres: PostgresCluster | None = None
        self.dsns: dict[str, str] = {}  # each service's database (its own role)
        self._stack = contextlib.AsyncExitStack()

    @property
    def showcase_url(self) -> str:
        return f"{self.urls['awards']}/showcase"

    @property
    def children(self) -> list[Child]:
        return [*([self.sink] if self.sink else []), *self.services]

    async def __aenter__(self) -> System:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.say("stopping ...")
        await self._stack.aclose()

    async def _start(self) -> None:
        stack = self._stack
        self.say(f"starting PostgreSQL and Kafka (logs in {self.workdir}) ...")
        postgres = self._postgres = PostgresCluster(self.workdir / "postgres")
        # Thrown away at the end: each stop is followed by removing the data (LIFO).
        stack.callback(postgres.discard_data)
        await asyncio.to_thread(postgres.start)
        stack.callback(postgres.stop)
        kafka = self._kafka = KafkaCluster(nodes=self.kafka_nodes, workdir=self.workdir / "kafka")
        stack.callback(kafka.discard_data)
        await asyncio.to_thread(kafka.start)
        stack.callback(kafka.stop)
        self.bootstrap_servers = kafka.bootstrap_servers

        smtp_port = free_port()
        mail_port = self.mail_url.rsplit(":", 1)[1].rstrip("/")
        self.sink = Child(
            "smtp-sink",
            python_module(
                "pearls_notifications.devsmtp",
                *("--port", str(smtp_port), "--http-port", mail_port),
                *("--maildir", str(self.mail_dir)),
            ),
            {},
            self.log_dir / "smtp-sink.log",
        )
        common = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "KAFKA_TOPIC_PARTITIONS": "3"}
        if self.kafka_nodes == 3:
            common["KAFKA_TOPIC_REPLICATION_FACTOR"] = "3"
            common["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"] = "2"
        env = self._service_env(smtp_port)
        for name, port in self.ports.items():
            dsn = self.dsns[name] = await asyncio.to_thread(
                postgres.create_database, name, name, name
            )
            self.services.append(
                Child(
                    name,
                    [_script(f"pearls-{name}"), "--host", "127.0.0.1", "--port", str(port)],
                    {
                        **common,
                        f"PEARLS_{name.upper()}_DATABASE_URL": dsn,
                        **env[name],
                        **self.service_env.get(name, {}),
                    },
                    self.log_dir / f"{name}.log",
                )
            )
        for child in self.children:
            stack.push_async_callback(child.stop)  # stopped in reverse: services, then the sink
            await child.start()
        await wait_ready(self.sink, self.mail_url)
        for child in self.services:
            await wait_ready(child, f"{self.urls[child.name]}/health/ready")

    def _service_env(self, smtp_port: int) -> dict[str, dict[str, str]]:
        coordinators = json.dumps([{"id": "demo-coordinator", "token": self.coordinator_token}])
        return {
            "applications": {"PEARLS_APPLICATIONS_COORDINATORS": coordinators},
            "mentoring": {
                "PEARLS_MENTORING_COORDINATORS": coordinators,
                # Nobody waits minutes here: match and look for overdue milestones every second.
                "PEARLS_MENTORING_MATCHING_INTERVAL_S": "1",
                "PEARLS_MENTORING_OVERDUE_INTERVAL_S": "1",
            },
            "awards": {
                "PEARLS_AWARDS_COORDINATORS": coordinators,
                # The showcase's pages and feed link to themselves with this address.
                "PEARLS_AWARDS_PUBLIC_BASE_URL": self.urls["awards"],
            },
            "notifications": {
                "PEARLS_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
                "PEARLS_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
                "PEARLS_NOTIFICATIONS_SMTP_STARTTLS": "false",
                "PEARLS_NOTIFICATIONS_COORDINATORS": coordinators,
                "PEARLS_NOTIFICATIONS_PUBLIC_BASE_URL": self.urls["notifications"],
            },
        }

    # -- faults: what the fault campaign (tests/faults) does to a running system -------

    @property
    def kafka(self) -> KafkaCluster:
        """The running Kafka cluster (``stop_node``/``start_node`` take one node away)."""
        assert self._kafka is not None, "the system is not started"
        return self._kafka

    def service(self, name: str) -> Child:
        return next(child for child in self.services if child.name == name)

    async def restart_service(self, name: str, *, kill: bool = True) -> None:
        """SIGKILL one service (``kill=False``: stop it cleanly), start it again, wait ready."""
        child = self.service(name)
        await (child.kill() if kill else child.stop())
        await child.start()
        await wait_ready(child, f"{self.urls[name]}/readyz")

    async def stop_sink(self) -> None:
        """Take the SMTP sink away: its port refuses connections until ``start_sink``."""
        assert self.sink is not None, "the system is not started"
        await self.sink.stop()

    async def start_sink(self) -> None:
        assert self.sink is not None, "the system is not started"
        await self.sink.start()
        await wait_ready(self.sink, self.mail_url)

    async def restart_kafka(self, *, kill: bool = False) -> None:
        """Each Kafka node in turn down (SIGKILL with ``kill``) and up again on its data and
        ports: with one node, the broker is away until it is back."""
        kafka = self.kafka
        for node in kafka.nodes:
            await asyncio.to_thread(kafka.stop_node, node.node_id, kill=kill)
            await asyncio.to_thread(kafka.start_node, node.node_id)

    async def restart_postgres(self, *, down_s: float = 0.0) -> None:
        """PostgreSQL stopped (fast shutdown: every session cut), left down ``down_s``
        seconds and started again on its data."""
        postgres = self._postgres
        assert postgres is not None, "the system is not started"
        await asyncio.to_thread(postgres.stop, remove_workdir=False)
        await asyncio.sleep(down_s)
        # start() would initdb afresh; _launch() starts the server on the data it has.
        await asyncio.to_thread(postgres._launch)

    def dead(self) -> str | None:
        """What stopped running by itself (a service, the sink or Kafka), said for a person."""
        for child in self.children:
            if not child.alive():
                code = child.process.returncode if child.process else None
                what = "the SMTP sink" if child is self.sink else f"the {child.name} service"
                return f"{what} exited unexpectedly (exit code {code}); its log: {child.log_path}"
        if self._kafka is not None and not self._kafka.alive():
            return f"Kafka exited unexpectedly; its logs: {self.workdir / 'kafka'}"
        return None

    async def wait_dead(
        self, stop: asyncio.Event, *, within: float | None = None, interval: float = 0.2
    ) -> str | None:
        """What died, as soon as something does; None once ``stop`` is set (or after
        ``within`` seconds, when given)."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not stop.is_set() and (deadline is None or loop.time() < deadline):
            died = self.dead()
            if died is not None:
                return died
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        return self.dead() if within is not None else None
