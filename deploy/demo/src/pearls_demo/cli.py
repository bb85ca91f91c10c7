"""`pearls-demo` (what `make run` starts): the whole system on this machine.

Starts PostgreSQL (one database and role per service), Kafka 4 (KRaft), an
SMTP sink whose captured mail can be read in a browser, and the services
(applications, mentoring, awards, notifications); then plays a short demo
through the public HTTP API, from a call for applications to an award round
and its public showcase, and shows which events flowed and which emails went
out. Ctrl-C stops everything, in order.

Every server takes a free port on 127.0.0.1 (the addresses are printed). The
work directory holds this run's logs and captured mail: an earlier run's logs,
mail and data are removed at start, and the databases' and Kafka's data at
stop (their logs stay). One run at a time per work directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pearls_demo.processes import Child, python_module, wait_ready
from pearls_demo.scenario import play
from pearls_demo.watch import tail_events
from pearls_localinfra._proc import repo_root
from pearls_localinfra.kafka import KafkaCluster
from pearls_localinfra.postgres import PostgresCluster
from pearls_shared.lines import printable

SERVICES = ("applications", "mentoring", "awards", "notifications")
DEMO_COORDINATOR_TOKEN = "demo-coordinator-token"  # noqa: S105 - local demo only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(name: str) -> str:
    """A console script of this environment, even when its bin/ is not on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pearls-demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=repo_root() / "var" / "run",
        help="where logs, data and captured mail go (an earlier run's are removed at start;"
        " default: var/run)",
    )
    parser.add_argument(
        "--mail-port",
        type=int,
        default=None,
        help="port of the captured-mail page (default: a free one, printed at start)",
    )
    parser.add_argument(
        "--exit-after-demo",
        action="store_true",
        help="stop once the demo's mail has gone out instead of running until Ctrl-C",
    )
    return parser


LOCK_FILE = "pearls-demo.lock"
# What a run leaves in its work directory; anything else there is not ours to delete.
RUN_ENTRIES = ("logs", "mail", "postgres", "kafka")


class AlreadyRunning(RuntimeError):
    """Another pearls-demo uses this work directory."""


def claim_workdir(workdir: Path) -> contextlib.ExitStack:
    """Lock ``workdir`` for this run (the lock holds our pid) and clear an earlier run's
    logs, mail and data from it; raise AlreadyRunning while another run holds it.

    The lock is an ``flock`` on a file in the work directory: it goes when this
    process ends, however it ends, so a crashed run never blocks the next one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    held = contextlib.ExitStack()
    lock = held.enter_context((workdir / LOCK_FILE).open("a+"))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        other = lock.read().strip() or "?"
        held.close()
        raise AlreadyRunning(
            f"pearls-demo is already running (pid {other}) with the work directory {workdir};"
            " stop it first (Ctrl-C in its terminal), or give this run another --workdir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for name in RUN_ENTRIES:
        entry = workdir / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    return held


async def run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    try:
        claimed = claim_workdir(workdir)
    except AlreadyRunning as exc:
        print(f"pearls-demo: {exc}", file=sys.stderr)
        return 1
    with claimed:
        return await _run(args, workdir)


async def _run(args: argparse.Namespace, workdir: Path) -> int:
    mail_port: int = args.mail_port or _free_port()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    say = _printer()
    children: list[Child] = []
    with contextlib.ExitStack() as infra:
        say(f"starting PostgreSQL and Kafka (logs in {workdir}) ...")
        postgres = PostgresCluster(workdir / "postgres")
        # Thrown away at the end: each stop is followed by removing the data (LIFO).
        infra.callback(postgres.discard_data)
        await asyncio.to_thread(postgres.start)
        infra.callback(postgres.stop)
        kafka = KafkaCluster(nodes=1, workdir=workdir / "kafka")
        infra.callback(kafka.discard_data)
        await asyncio.to_thread(kafka.start)
        infra.callback(kafka.stop)
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA_TOPIC_PARTITIONS": "3",
        }

        smtp_port = _free_port()
        sink = Child(
            "smtp-sink",
            python_module(
                "pearls_notifications.devsmtp",
                "--port",
                str(smtp_port),
                "--http-port",
                str(mail_port),
                "--maildir",
                str(workdir / "mail"),
            ),
            {},
            workdir / "logs" / "smtp-sink.log",
        )
        ports = {name: _free_port() for name in SERVICES}
        coordinators = json.dumps([{"id": "demo-coordinator", "token": DEMO_COORDINATOR_TOKEN}])
        env = {
            "applications": {"PEARLS_APPLICATIONS_COORDINATORS": coordinators},
            "mentoring": {
                "PEARLS_MENTORING_COORDINATORS": coordinators,
                # The demo cannot wait minutes: match and look for overdue milestones every second.
                "PEARLS_MENTORING_MATCHING_INTERVAL_S": "1",
                "PEARLS_MENTORING_OVERDUE_INTERVAL_S": "1",
            },
            "awards": {
                "PEARLS_AWARDS_COORDINATORS": coordinators,
                # The showcase's pages and feed link to themselves with this address.
                "PEARLS_AWARDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['awards']}",
            },
            "notifications": {
                "PEARLS_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
                "PEARLS_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
                "PEARLS_NOTIFICATIONS_SMTP_STARTTLS": "false",
                "PEARLS_NOTIFICATIONS_COORDINATOR_TOKENS": DEMO_COORDINATOR_TOKEN,
                "PEARLS_NOTIFICATIONS_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['notifications']}",
            },
        }
        for name in SERVICES:
            dsn = await asyncio.to_thread(postgres.create_database, name, name, name)
            children.append(
                Child(
                    name,
                    [_script(f"pearls-{name}"), "--host", "127.0.0.1", "--port", str(ports[name])],
                    {**common, f"PEARLS_{name.upper()}_DATABASE_URL": dsn, **env[name]},
                    workdir / "logs" / f"{name}.log",
                )
            )
        seen: Counter[str] = Counter()
        tail: asyncio.Task[None] | None = None
        try:
            await sink.start()
            await wait_ready(sink, f"http://127.0.0.1:{mail_port}/")
            for child in children:
                await child.start()
            for child, name in zip(children, SERVICES, strict=True):
                await wait_ready(child, f"http://127.0.0.1:{ports[name]}/readyz")
                say(f"{name:<14} http://127.0.0.1:{ports[name]}/docs")
            say(f"{'captured mail':<14} http://127.0.0.1:{mail_port}/")
            # The services created the topics at start-up: now they can be tailed.
            tail = asyncio.create_task(tail_events(kafka.bootstrap_servers, stop, seen, say))
            say("playing the demo through the public HTTP API ...")
            await play(
                f"http://127.0.0.1:{ports['applications']}",
                f"http://127.0.0.1:{ports['mentoring']}",
                f"http://127.0.0.1:{ports['awards']}",
                coordinator_token=DEMO_COORDINATOR_TOKEN,
                say=say,
            )
            await _wait_for_mail(seen, stop, within=120)
            say(
                f"demo done: {sum(n for t, n in seen.items() if 'notification' not in t)} events,"
                f" {seen['pearls.notification.sent']} emails sent"
                f" ({seen['pearls.notification.failed']} failed)."
            )
            if not args.exit_after_demo:
                say(f"read the mail at http://127.0.0.1:{mail_port}/ ; Ctrl-C stops everything")
                await _watch([*children, sink], stop)
        finally:
            stop.set()
            if tail is not None:
                await tail
            say("stopping ...")
            for child in reversed([sink, *children]):
                await child.stop()
    say("stopped.")
    return 0


async def _wait_for_mail(
    seen: Counter[str], stop: asyncio.Event, within: float, quiet: float = 5.0
) -> None:
    """Mail follows events asynchronously: wait until it has settled.

    Settled means mail has gone out and nothing at all (no event, no mail) has
    crossed Kafka for ``quiet`` seconds: the services' relays, the mentoring
    schedulers and the mail sender each act within a second or two.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last, quiet_since = -1, loop.time()
    while not stop.is_set() and loop.time() < deadline:
        total = sum(seen.values())
        mail = seen["pearls.notification.sent"] + seen["pearls.notification.failed"]
        if total != last:
            last, quiet_since = total, loop.time()
        elif mail > 0 and loop.time() - quiet_since > quiet:
            return
        await asyncio.sleep(0.5)


async def _watch(children: list[Child], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for child in children:
            if not child.alive():
                print(f"{child.name} exited unexpectedly; see {child.log_path}", file=sys.stderr)
                stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def _printer() -> Callable[[str], None]:
    """Every line the demo shows; what users wrote in it cannot drive the terminal."""

    def say(line: str) -> None:
        print(printable(line), flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # start-up chatter, not news
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
