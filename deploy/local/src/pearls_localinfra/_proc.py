"""Process, port and path helpers shared by the launchers."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

# deploy/local/src/pearls_localinfra/_proc.py -> repository root is four levels up.
_DEFAULT_REPO_ROOT = Path(__file__).resolve().parents[4]


def repo_root() -> Path:
    """The Pearls checkout (needed for deploy/kafka/pom.xml); PEARLS_REPO_ROOT overrides."""
    return Path(os.environ.get("PEARLS_REPO_ROOT") or _DEFAULT_REPO_ROOT)


def cache_dir() -> Path:
    """Where downloaded artefacts live (git-ignored); PEARLS_CACHE_DIR overrides."""
    return Path(os.environ.get("PEARLS_CACHE_DIR") or repo_root() / ".cache")


def free_ports(count: int) -> list[int]:
    """Free loopback ports; all sockets are held open together so no port repeats."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, or a note when it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return f"({path} not written)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll `check` until it returns True or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    wait_or_kill(proc, grace)


def wait_or_kill(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Wait for a process already asked to stop; SIGKILL it after `grace` seconds."""
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_preexec() -> Callable[[], None] | None:
    """A preexec_fn that kills the child if this process dies (no orphaned JVMs after a
    crashed test run). PDEATHSIG fires when the *spawning thread* exits, so it is only
    safe from the main thread; elsewhere we go without."""
    if os.uname().sysname != "Linux" or threading.current_thread() is not threading.main_thread():
        return None
    return _die_with_parent
