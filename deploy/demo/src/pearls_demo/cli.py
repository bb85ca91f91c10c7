"""`pearls-demo` (what `make run` starts): the whole system on this machine.

Starts PostgreSQL (one database and role per service), Kafka 4 (KRaft), an
SMTP sink whose captured mail can be read in a browser, and the services
(applications, mentoring, awards, notifications); then plays a short demo
through the public HTTP API, from a call for applications to an award round
and its public showcase, and shows which events flowed and which emails went
out; then a summary says where to look (each service's API docs, the
showcase, the captured mail, Kafka, the logs). `--no-demo` starts the system
alone. Ctrl-C stops everything, in order; a server that dies on its own is
named, with its log, and stops the run with a non-zero exit.

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
import logging
import os
import shutil
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pearls_demo.scenario import play
from pearls_demo.system import System
from pearls_demo.watch import tail_events
from pearls_localinfra._proc import repo_root
from pearls_shared.lines import printable
from pearls_shared.topics import CONTRACT_TOPICS


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
        "--no-demo",
        action="store_true",
        help="start the system without playing the demo (empty databases; runs until Ctrl-C)",
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
            f"pearls-demo is already running (pid {other}) with the work directory {workdir}.\n"
            "Stop it first (Ctrl-C in its terminal), or give this run a work directory of its"
            " own: make run RUN_ARGS='--workdir DIR' (or pearls-demo --workdir DIR)."
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
        print(exc, file=sys.stderr)
        return 1
    with claimed:
        return await _run(args, workdir)


async def _run(args: argparse.Namespace, workdir: Path) -> int:
    stop = asyncio.Event()
    started = False
    say = _printer()

    def interrupted() -> None:
        if not stop.is_set() and not started:
            # A server half-started cannot be abandoned: each one's stop is known once it runs.
            say("Ctrl-C: stopping as soon as the servers being started are up ...")
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)

    system = System(workdir, mail_port=args.mail_port, say=say)
    try:
        async with system:
            started = True
            code = await _serve(args, system, stop, say)
    except RuntimeError as exc:  # a server that did not start, named with its log's tail
        _error(f"pearls-demo: {exc}")
        return 1
    say("stopped.")
    return code


async def _serve(
    args: argparse.Namespace, system: System, stop: asyncio.Event, say: Callable[[str], None]
) -> int:
    """Show the addresses, play the demo (unless --no-demo), then run until Ctrl-C.

    A service (or the sink, or Kafka) that dies on its own ends the run: said
    with its name and log, and a non-zero exit.
    """
    if stop.is_set():  # Ctrl-C while the servers started
        return 0
    watch = asyncio.create_task(system.wait_dead(stop))
    if not args.no_demo:
        for name, url in system.urls.items():
            say(f"{name:<14} {url}/docs")
        say(f"{'captured mail':<14} {system.mail_url}")
        demo = asyncio.create_task(_demo(system, stop, say))
        await asyncio.wait({demo, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not demo.done():
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await demo
        elif (failed := demo.exception()) is not None:
            # A service that dies under the demo fails its next request: name the service.
            died = await system.wait_dead(stop, within=3.0)
            if died is not None:
                return _died(stop, died)
            stop.set()
            await watch
            traceback.print_exception(failed)
            _error(f"pearls-demo: the demo stopped: {failed}; the services' logs: {system.log_dir}")
            return 1
        if watch.done():  # something died under the demo, or Ctrl-C
            died = watch.result()
            return 0 if died is None else _died(stop, died)
        if args.exit_after_demo:
            stop.set()
    if not stop.is_set():
        _summary(system, say)
    died = await watch
    if died is not None:
        return _died(stop, died)
    return 0


def _died(stop: asyncio.Event, died: str) -> int:
    stop.set()
    _error(f"pearls-demo: {died}; stopping everything")
    return 1


async def _demo(system: System, stop: asyncio.Event, say: Callable[[str], None]) -> None:
    seen: Counter[str] = Counter()
    done = asyncio.Event()  # the tail stops with the demo, or with the run
    # The services created the topics at start-up: now they can be tailed.
    tail = asyncio.create_task(tail_events(system.bootstrap_servers, done, seen, say))
    try:
        say("playing the demo through the public HTTP API ...")
        await play(
            system.urls["applications"],
            system.urls["mentoring"],
            system.urls["awards"],
            coordinator_token=system.coordinator_token,
            say=say,
        )
        await _wait_for_mail(seen, stop, within=120)
        say(
            f"demo done: {sum(n for t, n in seen.items() if 'notification' not in t)} events,"
            f" {seen['pearls.notification.sent']} emails sent"
            f" ({seen['pearls.notification.failed']} failed)."
        )
    finally:
        done.set()
        await tail


def _summary(system: System, say: Callable[[str], None]) -> None:
    """Where to look, once everything runs."""
    say("")
    say("Pearls is running. Where to look:")
    for name, url in system.urls.items():
        say(f"  {name + ' API':<18} {url}/docs")
    say(f"  {'showcase':<18} {system.showcase_url}  (JSON: {system.showcase_url}.json)")
    say(f"  {'captured mail':<18} {system.mail_url}  (.eml files in {system.mail_dir})")
    topics = ", ".join(CONTRACT_TOPICS)
    say(f"  {'events (Kafka)':<18} {system.bootstrap_servers}  (topics {topics})")
    say(f"  {'logs':<18} {system.log_dir}")
    say(f"  {'coordinator token':<18} {system.coordinator_token}")
    say("Ctrl-C stops everything.")


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


def _error(line: str) -> None:
    print(printable(line), file=sys.stderr, flush=True)


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
