"""`make run` as a new user meets it: the options it shows, a service that dies under
the demo, and Ctrl-C while the servers start.

The whole system's start, Ctrl-C and a second run beside a running one are in
test_whole_system.py, which shares one start of `make run-system`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.e2e.running import ROOT, Run, new_workdir

pytestmark = pytest.mark.integration


def test_make_help_shows_how_to_run_without_the_demo() -> None:
    shown = subprocess.run(
        ["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert re.search(r"^  make run +.*Ctrl-C stops it$", shown, re.M), shown
    assert re.search(r"^  make run-system +.*without the demo", shown, re.M), shown
    assert "DEMO=0" in shown and "RUN_ARGS=" in shown
    # Both ways start pearls-demo without the demo, with the options given.
    for targets in (["run", "DEMO=0"], ["run-system"]):
        planned = subprocess.run(
            ["make", "-n", *targets, "RUN_ARGS=--workdir /somewhere"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert re.search(r"pearls-demo --no-demo +--workdir /somewhere$", planned, re.M), planned
    planned = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert "pearls-demo" in planned and "--no-demo" not in planned


def test_a_service_that_dies_under_the_demo_is_named_and_the_whole_run_stops() -> None:
    run = Run.make(new_workdir(), "run")
    try:
        run.wait_for(r"^> coordinator opened the call")  # the demo is under way
        running = run.processes()
        [service] = [p for p in running.values() if "pearls-applications --host" in p.args]
        os.kill(service.pid, signal.SIGKILL)

        assert run.wait() != 0, run.output[-3000:]
        log = run.workdir / "logs" / "applications.log"
        assert re.search(
            r"^pearls-demo: the applications service exited unexpectedly \(exit code -9\);"
            rf" its log: {re.escape(str(log))}; stopping everything$",
            run.output,
            re.M,
        ), run.output[-3000:]
        assert "demo done" not in run.output, run.output
        assert "Pearls is running" not in run.output, run.output
        assert run.lines[-3:-1] == ["stopping ...", "stopped."], run.output[-3000:]
        # Everything else stopped with it: Kafka's JVM, PostgreSQL, the sink, the other services.
        started = " ".join(p.args for p in running.values())
        for part in ("java", "postgres", "devsmtp", "pearls-mentoring", "pearls-notifications"):
            assert part in started, started
        assert run.left_behind() == []
    finally:
        run.close()
        shutil.rmtree(run.workdir, ignore_errors=True)


def test_ctrl_c_while_the_servers_start_stops_them_once_up() -> None:
    workdir = new_workdir()
    run = Run([sys.executable, "-m", "pearls_demo.cli", "--workdir", str(workdir)], workdir)
    try:
        run.wait_for(r"^starting PostgreSQL and Kafka")
        run.ctrl_c()
        assert run.wait() == 0, run.output[-3000:]
        assert "Ctrl-C: stopping as soon as the servers being started are up ..." in run.lines
        assert "playing the demo through the public HTTP API ..." not in run.lines
        assert run.lines[-2:] == ["stopping ...", "stopped."], run.output[-3000:]
        # Everything that was being started did start, and stopped again.
        started = " ".join(p.args for p in run.seen())
        for part in ("java", "postgres", "devsmtp", "pearls-applications", "pearls-notifications"):
            assert part in started, started
        assert run.left_behind() == []
    finally:
        run.close()
        shutil.rmtree(workdir, ignore_errors=True)
