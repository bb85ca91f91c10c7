"""Apache Kafka 4.x in KRaft mode from Maven Central jars: no Docker, no distribution tarball.

`ensure_kafka_classpath()` resolves the broker's runtime jars once (deploy/kafka/pom.xml);
`KafkaCluster` formats and runs 1 or 3 combined broker+controller JVMs on loopback.
`KafkaCluster(security=KafkaSecurity.for_pearls())` adds a SASL_SSL listener (SCRAM-SHA-512
users, a throwaway CA, ACLs enforced by the StandardAuthorizer); without it, nothing changes.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pearls_localinfra._kafkawire import live_broker_ids
from pearls_localinfra._proc import (
    cache_dir,
    child_preexec,
    free_ports,
    repo_root,
    tail,
    terminate,
    wait_or_kill,
    wait_until,
)
from pearls_localinfra.acl import PEARLS_SERVICES, AclBinding, ServiceAccess, pearls_bindings

DEFAULT_KAFKA_VERSION = "4.1.1"
_MARKER = ".pearls-complete"
_HOST = "127.0.0.1"

INSTALL_HINT = (
    "The local Kafka launcher needs Java 17+ (`java`) and Maven (`mvn`) on PATH, e.g. "
    "`apt-get install openjdk-17-jre-headless maven` or `brew install openjdk@17 maven`."
)

# Log to a file per node: the broker's INFO chatter would drown test output.
_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

# Small heap, serial GC and C1 only: a test broker moves little data, and this trims
# both startup time and CPU on a 2-core CI runner.
_JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)


class KafkaError(RuntimeError):
    """Kafka could not be provisioned or started."""


def kafka_version() -> str:
    return os.environ.get("PEARLS_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def ensure_kafka_classpath(version: str | None = None) -> Path:
    """Directory holding the broker's runtime jars, resolved with Maven on first use.

    Cached under `<cache>/kafka-<version>/libs`; a marker file records a complete copy,
    and a file lock keeps parallel test workers from running Maven twice.
    """
    version = version or kafka_version()
    base = cache_dir() / f"kafka-{version}"
    libs = base / "libs"
    if (libs / _MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError(f"Maven (`mvn`) is not on PATH. {INSTALL_HINT}")
    pom = repo_root() / "deploy" / "kafka" / "pom.xml"
    if not pom.is_file():
        raise KafkaError(f"{pom} not found; set PEARLS_REPO_ROOT to the Pearls checkout")
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / _MARKER).exists():
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
            f"-Dkafka.version={version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            output = (done.stdout + done.stderr).strip()[-3000:]
            raise KafkaError(f"resolving Kafka {version} jars failed:\n$ {' '.join(cmd)}\n{output}")
        (libs / _MARKER).write_text(version + "\n")
    return libs


def random_cluster_id() -> str:
    """A Kafka cluster id: a base64url UUID, as `StorageTool random-uuid` prints, without
    paying for a JVM start. Kafka avoids ids starting with '-' (they read as CLI flags)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _pairs(ports: list[int]) -> list[tuple[int, int]]:
    return list(zip(ports[::2], ports[1::2], strict=True))


def new_password() -> str:
    """A random password of letters and digits (safe in `--add-scram` and JAAS syntax)."""
    return secrets.token_hex(16)


@dataclass
class KafkaSecurity:
    """What the opt-in SASL_SSL listener enforces.

    `users` (name -> password) get SCRAM-SHA-512 credentials when the storage is formatted;
    `admin_user` is a super user (it creates `acls` once the broker serves); every other
    user may do only what `acls` allow (`allow.everyone.if.no.acl.found=false`).
    """

    users: dict[str, str] = field(default_factory=dict)
    acls: tuple[AclBinding, ...] = ()
    admin_user: str = "pearls-admin"
    admin_password: str = field(default_factory=new_password)

    @classmethod
    def for_pearls(
        cls,
        services: Iterable[ServiceAccess] = PEARLS_SERVICES,
        *,
        extra_users: Sequence[str] = (),
    ) -> KafkaSecurity:
        """One user per service with a random password and the ACLs of `pearls_localinfra.acl`;
        `extra_users` get credentials and no rights at all."""
        services = tuple(services)
        names = [a.user for a in services] + list(extra_users)
        return cls(
            users={name: new_password() for name in names},
            acls=tuple(pearls_bindings(services)),
        )

    def password(self, user: str) -> str:
        return self.admin_password if user == self.admin_user else self.users[user]

    def all_users(self) -> dict[str, str]:
        return {self.admin_user: self.admin_password, **self.users}


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    secure_port: int | None = None  # the SASL_SSL listener, with `KafkaCluster(security=...)`

    @property
    def server_log(self) -> Path:
        return self.directory / "server.log"

    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class KafkaCluster:
    """One (`nodes=1`) or three (`nodes=3`) Kafka nodes on 127.0.0.1, each broker+controller.

    Node ids are 1..nodes. Each `start()` wipes and reformats `<workdir>/node-<id>`;
    a cluster given no workdir uses a temporary directory and removes it on `stop()`.
    """

    def __init__(
        self,
        nodes: int = 1,
        workdir: str | Path | None = None,
        heap: str = "512m",
        *,
        version: str | None = None,
        startup_timeout: float = 90.0,
        security: KafkaSecurity | None = None,
    ) -> None:
        if nodes not in (1, 3):
            raise ValueError("nodes must be 1 or 3")
        self.version = version or kafka_version()
        self.heap = heap
        self.startup_timeout = startup_timeout
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pearls-kafka-")).resolve()
        self.nodes = [
            KafkaNode(i + 1, port, controller_port, self.workdir / f"node-{i + 1}")
            for i, (port, controller_port) in enumerate(_pairs(free_ports(2 * nodes)))
        ]
        self.cluster_id = random_cluster_id()
        self.security = security
        if security is not None:
            for node, secure_port in zip(self.nodes, free_ports(nodes), strict=True):
                node.secure_port = secure_port
        self._libs: Path | None = None
        self._java: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The PLAINTEXT listeners (with `security`, its super user is ANONYMOUS: see
        `_security_properties`)."""
        return ",".join(f"{_HOST}:{node.port}" for node in self.nodes)

    @property
    def secure_bootstrap_servers(self) -> str:
        """The SASL_SSL listeners (only with `security`)."""
        if self.security is None:
            raise KafkaError("this cluster was started without security: no SASL_SSL listener")
        return ",".join(f"{_HOST}:{node.secure_port}" for node in self.nodes)

    @property
    def tls_dir(self) -> Path:
        return self.workdir / "tls"

    @property
    def ca_file(self) -> Path:
        """PEM of the throwaway CA that signed the brokers' certificate (clients' cafile)."""
        return self.tls_dir / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this cluster's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Format every node, start them together (a quorum needs a majority) and wait."""
        self._java = java_executable()
        if self._java is None:
            raise KafkaError(f"`java` is not on PATH. {INSTALL_HINT}")
        self._libs = ensure_kafka_classpath(self.version)
        try:
            self._start_once()
        except KafkaError:
            # A free port can be taken between choosing it and binding it; retry once.
            if not self._port_clash():
                raise
            for node, (port, controller_port) in zip(
                self.nodes, _pairs(free_ports(2 * len(self.nodes))), strict=True
            ):
                node.port, node.controller_port = port, controller_port
            if self.security is not None:
                for node, secure_port in zip(self.nodes, free_ports(len(self.nodes)), strict=True):
                    node.secure_port = secure_port
            self._start_once()

    def _start_once(self) -> None:
        if self.security is not None and not (self.tls_dir / "broker.pem").exists():
            self._write_tls()
        for node in self.nodes:
            shutil.rmtree(node.directory, ignore_errors=True)
            node.directory.mkdir(parents=True)
            (node.directory / "server.properties").write_text(self._properties(node))
            (node.directory / "log4j2.properties").write_text(_LOG4J2.format(log=node.server_log))
        self._format()
        atexit.register(self.stop)
        try:
            for node in self.nodes:
                self._launch(node)
            self._wait_ready(self.nodes)
            if self.security is not None and self.security.acls:
                self._create_acls(self.security)
        except BaseException:
            self.stop(remove_workdir=False)
            raise

    def _port_clash(self) -> bool:
        logs = [log for node in self.nodes for log in (node.server_log, node.console_log)]
        return any(
            "Address already in use" in log.read_text(errors="replace")
            for log in logs
            if log.exists()
        )

    def stop(self, *, remove_workdir: bool | None = None) -> None:
        """Stop every node (SIGTERM, then SIGKILL after a grace period)."""
        atexit.unregister(self.stop)
        procs = [node.process for node in self.nodes if node.process is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()  # all at once: stopping one by one costs a timeout each
        for proc in procs:
            wait_or_kill(proc, grace=20.0)
        for node in self.nodes:
            node.process = None
        if remove_workdir if remove_workdir is not None else self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def discard_data(self) -> None:
        """Remove the stopped nodes' data (``log.dirs``); their logs stay for reading."""
        if any(node.running for node in self.nodes):
            raise KafkaError("stop the cluster before discarding its data")
        for node in self.nodes:
            shutil.rmtree(node.directory / "data", ignore_errors=True)

    def stop_node(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node: a clean shutdown, or SIGKILL with `kill=True` (a crash)."""
        node = self.node(node_id)
        if node.process is not None:
            if kill:
                node.process.kill()
                node.process.wait()
            else:
                terminate(node.process, grace=30.0)
            node.process = None

    def start_node(self, node_id: int, timeout: float | None = None) -> None:
        """Restart a stopped node on its old ports and data, and wait until it serves."""
        node = self.node(node_id)
        if node.running:
            return
        self._launch(node)
        self._wait_ready([node], timeout)

    def alive(self) -> bool:
        """True while every node's JVM runs (stopped nodes included as not running)."""
        return all(node.running for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        if not 1 <= node_id <= len(self.nodes):
            raise ValueError(f"node ids are 1..{len(self.nodes)}, got {node_id}")
        return self.nodes[node_id - 1]

    # -- internals ---------------------------------------------------------------------

    def _properties(self, node: KafkaNode) -> str:
        n = len(self.nodes)
        min_isr = min(2, n)
        if n == 1:
            # Dynamic quorum (KIP-853): formatted with --standalone.
            quorum = f"controller.quorum.bootstrap.servers={_HOST}:{node.controller_port}"
        else:
            voters = ",".join(f"{x.node_id}@{_HOST}:{x.controller_port}" for x in self.nodes)
            quorum = f"controller.quorum.voters={voters}"
        settings = {
            "node.id": node.node_id,
            "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://{_HOST}:{node.port},CONTROLLER://{_HOST}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{_HOST}:{node.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": node.directory / "data",
            # Tests create their topics explicitly, as production does.
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "default.replication.factor": n,
            "min.insync.replicas": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            "offsets.topic.replication.factor": n,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": n,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": n,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Fence a dead broker after 3 s, not 9: fault tests wait for this.
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            # Thread pools and cleaner buffer sized for a laptop or a 2-core runner.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 4,
            "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        }
        if self.security is not None:
            settings.update(self._security_properties(node))
        lines = [f"{key}={value}" for key, value in settings.items()]
        return "\n".join([*lines, quorum, ""])

    def _security_properties(self, node: KafkaNode) -> dict[str, object]:
        """A SASL_SSL listener (SCRAM-SHA-512, PEM keystore) and the StandardAuthorizer.

        The controller and inter-broker listeners stay PLAINTEXT on loopback, so the
        brokers' own principal is User:ANONYMOUS and must be a super user; the PLAINTEXT
        client listener therefore has every right. It serves the launcher's readiness
        probe; tests of rights use the SASL_SSL listener. A production cluster secures
        every listener (README "Kafka security").
        """
        assert self.security is not None
        return {
            "listeners": (
                f"PLAINTEXT://{_HOST}:{node.port},SASL_SSL://{_HOST}:{node.secure_port},"
                f"CONTROLLER://{_HOST}:{node.controller_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{_HOST}:{node.port},SASL_SSL://{_HOST}:{node.secure_port}"
            ),
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": self.tls_dir / "broker.pem",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:ANONYMOUS;User:{self.security.admin_user}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _write_tls(self) -> None:
        """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it; the key in
        PKCS#8, as Kafka's PEM keystore wants it."""
        import trustme
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
            load_pem_private_key,
        )

        ca = trustme.CA(organization_name="Pearls local Kafka")
        leaf = ca.issue_cert(_HOST, "localhost")
        key = load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        pkcs8 = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(self.ca_file))
        broker = self.tls_dir / "broker.pem"
        broker.write_bytes(pkcs8 + chain)
        broker.chmod(0o600)

    def _create_acls(self, security: KafkaSecurity) -> None:
        from pearls_localinfra._aclwire import create_acls

        try:
            create_acls(
                self.secure_bootstrap_servers,
                self.ssl_context(),
                security.admin_user,
                security.admin_password,
                security.acls,
            )
        except Exception as exc:
            node = self.nodes[0]
            raise self._failure(node, f"refused the ACLs over SASL_SSL: {exc!r}") from exc

    def _java_cmd(self, main_class: str, *args: str, heap: str, node: KafkaNode) -> list[str]:
        assert self._java is not None and self._libs is not None
        return [
            self._java,
            f"-Xmx{heap}",
            *_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={node.directory}",
            "-cp",
            f"{self._libs}/*",
            main_class,
            *args,
        ]

    def _format(self) -> None:
        """Write each node's meta.properties (all nodes in parallel: one JVM start each)."""
        mode = ["--standalone"] if len(self.nodes) == 1 else []
        if self.security is not None:
            for user, password in self.security.all_users().items():
                mode += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        procs = []
        for node in self.nodes:
            config = str(node.directory / "server.properties")
            cmd = self._java_cmd(
                "kafka.tools.StorageTool",
                *("format", *mode, "-t", self.cluster_id, "-c", config),
                heap="256m",
                node=node,
            )
            procs.append(
                (node, cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
            )
        for node, cmd, proc in procs:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                raise KafkaError(
                    f"formatting node {node.node_id} failed:\n$ {' '.join(cmd)}\n"
                    + output.decode("utf-8", "replace")[-3000:]
                )

    def _launch(self, node: KafkaNode) -> None:
        config = str(node.directory / "server.properties")
        cmd = self._java_cmd("kafka.Kafka", config, heap=self.heap, node=node)
        with node.console_log.open("ab") as console:
            node.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=node.directory,
                start_new_session=True,  # Ctrl-C goes to us; we stop the JVMs in order
                preexec_fn=child_preexec(),  # only a prctl() call: fork-safe
            )

    def _wait_ready(self, nodes: list[KafkaNode], timeout: float | None = None) -> None:
        """Wait until each of `nodes` reports every running node as a live broker."""
        timeout = self.startup_timeout if timeout is None else timeout
        started = time.monotonic()
        for node in nodes:
            expected = {x.node_id for x in self.nodes if x.running}

            def ready(node: KafkaNode = node, expected: set[int] = expected) -> bool:
                if not node.running:
                    raise self._failure(node, "exited during startup")
                ids = live_broker_ids(_HOST, node.port)
                return ids is not None and expected <= set(ids)

            remaining = max(0.0, timeout - (time.monotonic() - started))
            if not wait_until(ready, remaining, interval=0.25):
                raise self._failure(node, f"did not serve metadata within {timeout:.0f}s")

    def _failure(self, node: KafkaNode, what: str) -> KafkaError:
        return KafkaError(
            f"Kafka node {node.node_id} ({_HOST}:{node.port}) {what}.\n"
            f"--- {node.server_log} (tail) ---\n{tail(node.server_log)}\n"
            f"--- {node.console_log} (tail) ---\n{tail(node.console_log, 20)}"
        )
