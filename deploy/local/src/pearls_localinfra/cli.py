"""`pearls-infra`: run Kafka and PostgreSQL locally without Docker."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from pearls_localinfra._proc import repo_root
from pearls_localinfra.kafka import KafkaCluster, KafkaError, ensure_kafka_classpath, kafka_version
from pearls_localinfra.postgres import PostgresCluster, PostgresError

SERVICES = ("applications", "mentoring", "awards", "notifications")

DESCRIPTION = """\
Local, Docker-free Kafka (KRaft) and PostgreSQL for Pearls development and tests.

Kafka runs from Maven Central jars (needs Java 17+ and Maven; the jars are cached in
$PEARLS_CACHE_DIR or <repo>/.cache); PostgreSQL from the server binaries
($PEARLS_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH). Everything
listens on 127.0.0.1 on free ports and is throwaway: every start wipes its data,
and every stop removes it (the servers' logs stay in the workdir). While `up` runs,
<workdir>/env holds the addresses as `export` lines; it is removed at stop.
"""

EPILOG = """\
examples:
  pearls-infra up                       # Kafka + the four service databases
  source var/infra/env                  # ...in another shell: services and pytest use them
  pearls-infra kafka --nodes 3          # a 3-node KRaft cluster
  pearls-infra postgres --databases applications,awards
  pearls-infra fetch                    # CI prepare step: download the Kafka jars only
"""


def _default_workdir() -> Path:
    return repo_root() / "var" / "infra"


def _databases(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one database name")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pearls-infra",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if name != "fetch":
            sub.add_argument(
                "--workdir",
                type=Path,
                default=_default_workdir(),
                help="state and logs go here, in kafka/ and postgres/ (default: %(default)s)",
            )
        return sub

    fetch = command("fetch", "resolve the Kafka broker jars into the cache, then exit")
    fetch.add_argument("--kafka-version", default=kafka_version(), help="(default: %(default)s)")

    def kafka_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="(default: 1)")
        sub.add_argument("--heap", default="512m", help="JVM -Xmx per node (default: 512m)")

    def postgres_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--databases",
            type=_databases,
            default=list(SERVICES),
            help="comma-separated; one database + login role (password = name) each "
            f"(default: {','.join(SERVICES)})",
        )
        sub.add_argument("--pg-port", type=int, help="fixed port (default: a free one)")

    kafka_options(command("kafka", "run Kafka in the foreground until Ctrl-C or SIGTERM"))
    postgres_options(command("postgres", "run PostgreSQL in the foreground until Ctrl-C"))
    up = command("up", "run both; print `export` lines and write them to <workdir>/env")
    kafka_options(up)
    postgres_options(up)
    return parser


# A starter starts one server, registers its stop on the stack and returns its
# environment variables and a liveness check.
Started = tuple[dict[str, str], Callable[[], bool]]


def _start_kafka(args: argparse.Namespace, stack: ExitStack) -> Started:
    cluster = KafkaCluster(nodes=args.nodes, workdir=args.workdir / "kafka", heap=args.heap)
    print(f"starting Kafka ({args.nodes} node(s), logs in {cluster.workdir}) ...", file=sys.stderr)
    cluster.start()
    stack.callback(cluster.discard_data)  # runs after the stop below
    stack.callback(cluster.stop)
    return {"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}, cluster.alive


def _start_postgres(args: argparse.Namespace, stack: ExitStack) -> Started:
    cluster = PostgresCluster(args.workdir / "postgres", port=args.pg_port)
    print(f"starting PostgreSQL (data in {cluster.workdir}) ...", file=sys.stderr)
    cluster.start()
    stack.callback(cluster.discard_data)  # runs after the stop below
    stack.callback(cluster.stop)
    # The superuser DSN lets pytest in another shell create its own databases here.
    env = {"PEARLS_TEST_POSTGRES_DSN": cluster.superuser_dsn}
    for name in args.databases:
        env[f"PEARLS_{name.upper()}_DATABASE_URL"] = cluster.create_database(name, name, name)
    return env, cluster.alive


def write_env_file(path: Path, env: dict[str, str]) -> str:
    """Write ``env`` as ``export`` lines a shell can ``source``; return the text.

    Written whole under a temporary name and renamed, so a shell sourcing it
    never reads half of it.
    """
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(exports)
    partial.replace(path)
    return exports


def _serve(args: argparse.Namespace, starters: list[Callable[..., Started]]) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handle SIGINT too: a KeyboardInterrupt could land mid-start and skip the cleanup.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    with ExitStack() as stack:
        env: dict[str, str] = {}
        checks = []
        for start in starters:
            if stop.is_set():
                return 130
            started_env, alive = start(args, stack)
            env.update(started_env)
            checks.append(alive)
        env_file = args.workdir / "env"
        exports = write_env_file(env_file, env)
        stack.callback(env_file.unlink, missing_ok=True)  # its addresses die with the servers
        print(exports, end="", flush=True)
        print(f"# written to {env_file}; Ctrl-C stops everything", file=sys.stderr)
        while not stop.wait(2.0):
            if not all(alive() for alive in checks):
                print("pearls-infra: a server died; see its log in the workdir", file=sys.stderr)
                return 1
        print("stopping ...", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fetch":
            print(ensure_kafka_classpath(args.kafka_version))
            return 0
        args.workdir = args.workdir.resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)
        starters = {
            "kafka": [_start_kafka],
            "postgres": [_start_postgres],
            "up": [_start_postgres, _start_kafka],
        }[args.command]
        return _serve(args, starters)
    except (KafkaError, PostgresError) as exc:
        print(f"pearls-infra: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
