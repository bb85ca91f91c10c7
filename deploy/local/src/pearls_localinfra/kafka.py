"""Apache Kafka 4.x in KRaft mode from Maven Central jars: no Docker, no distribution tarball.

`ensure_kafka_classpath()` resolves the broker's runtime jars once (deploy/kafka/pom.xml);
`KafkaCluster` formats and runs 1 or 3 combined broker+controller JVMs on loopback.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import uuid
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


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

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
        self._libs: Path | None = None
        self._java: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{_HOST}:{node.port}" for node in self.nodes)

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
            self._start_once()

    def _start_once(self) -> None:
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
        lines = [f"{key}={value}" for key, value in settings.items()]
        return "\n".join([*lines, quorum, ""])

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
