"""`make run` as a user starts it: a real process tree, its output read as it comes.

A ``Run`` starts a command (``make run-system …`` or ``pearls-demo …``) in a
session of its own, as a terminal would, so ``ctrl_c`` sends SIGINT to its
whole foreground group like Ctrl-C does. ``processes`` lists everything the
run started: the command's descendants and whatever mentions the run's work
directory (PostgreSQL's server daemonises away from its parent), tracked from
the start so that ``left_behind`` sees every one of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def new_workdir() -> Path:
    # Not under pytest's tmp dir: PostgreSQL runs as an unprivileged user when
    # the tests run as root, and must be able to reach its data directory.
    path = ROOT / "var" / f"e2e-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # clock ticks after boot: tells a pid apart from its reuse
    args: str

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.started and stat[1] != "Z"


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _args(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


_SUB_MAKE = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}


class Run:
    def __init__(self, argv: list[str], workdir: Path) -> None:
        self.workdir = workdir
        self.lines: list[str] = []
        self._seen: dict[int, Proc] = {}
        # As a user at a terminal runs it: not as a sub-make of `make test` (which would
        # add "make[1]: Entering directory" and "make[1]: *** ... Error" lines).
        env = {k: v for k, v in os.environ.items() if k not in _SUB_MAKE}
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own foreground group, as in a terminal
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._lock = threading.Lock()
        # Remember every process of the run as it appears, so none can slip by unseen.
        self._tracker = threading.Thread(target=self._track, daemon=True)
        self._tracker.start()

    @classmethod
    def make(cls, workdir: Path, *targets: str) -> Run:
        return cls(["make", *targets, f"RUN_ARGS=--workdir {workdir}"], workdir)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def _track(self) -> None:
        while self.popen.poll() is None:
            self.processes()
            time.sleep(0.3)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, within: float = 180.0) -> re.Match[str]:
        """The first output line matching ``pattern``, once it has been printed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within
        while True:
            for line in list(self.lines):
                if found := regex.search(line):
                    return found
            if self.popen.poll() is not None and not self._reader.is_alive():
                raise AssertionError(
                    f"exited ({self.popen.returncode}) before {pattern!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {within:.0f}s:\n{self.output}")
            time.sleep(0.2)

    def summary(self) -> dict[str, str]:
        """The closing summary's entries: what -> where (its first word after the name)."""
        self.wait_for(r"^Ctrl-C stops everything\.$")
        start = self.lines.index("Pearls is running. Where to look:")
        entries = {}
        for line in self.lines[start + 1 :]:
            if not line.startswith("  "):
                break
            name, where = re.split(r" {2,}", line.strip(), maxsplit=1)
            entries[name] = where.split()[0]
        return entries

    def processes(self) -> dict[int, Proc]:
        """Every process of this run alive now (each is remembered for ``left_behind``)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                parents[int(entry.name)] = stat[0]
        ours = {self.popen.pid}
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in ours} - ours
            grew = bool(more)
            ours |= more
        ours |= {pid for pid in parents if str(self.workdir) in _args(pid)}
        with self._lock:
            for pid in ours:
                stat = _stat(pid)
                known = self._seen.get(pid)
                if stat is not None and (known is None or known.started == stat[2]):
                    # Read again each time: a child seen between fork and exec shows its
                    # parent's command line until then.
                    self._seen[pid] = Proc(pid, stat[2], _args(pid) or (known and known.args) or "")
            seen = list(self._seen.values())
        return {p.pid: p for p in seen if p.alive()}

    def seen(self) -> list[Proc]:
        """Every process of this run seen so far, running or not."""
        with self._lock:
            return list(self._seen.values())

    def left_behind(self) -> list[Proc]:
        """Processes of this run seen at any time and still running."""
        return [p for p in self.seen() if p.alive()]

    def ctrl_c(self) -> None:
        os.killpg(self.popen.pid, signal.SIGINT)

    def wait(self, within: float = 120.0) -> int:
        code = self.popen.wait(within)
        self._reader.join(10)
        return code

    def close(self) -> None:
        """However a test ended: stop what is left of the run, then its leftovers."""
        if self.popen.poll() is None:
            self.ctrl_c()
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.processes()
        for proc in self.left_behind():
            os.kill(proc.pid, signal.SIGKILL)
