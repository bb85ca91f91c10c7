"""`make run` as a new user meets it: the options it shows, and a service that dies.

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


def test_a_service_that_dies_is_named_and_the_whole_run_stops() -> None:
    run = Run.make(new_workdir(), "run", "DEMO=0")
    try:
        entries = run.summary()
        assert {
            f"{s} API" for s in ("applications", "mentoring", "awards", "notifications")
        } <= set(entries)
        running = run.processes()
        [mentoring] = [p for p in running.values() if re.search(r"pearls-mentoring --host", p.args)]
        os.kill(mentoring.pid, signal.SIGKILL)

        assert run.wait() != 0, run.output[-3000:]
        log = run.workdir / "logs" / "mentoring.log"
        assert re.search(
            rf"^pearls-demo: the mentoring service exited unexpectedly \(exit code -9\); its log:"
            rf" {re.escape(str(log))}; stopping everything$",
            run.output,
            re.M,
        ), run.output[-3000:]
        assert "stopped." in run.lines
        # Everything else stopped with it: Kafka's JVM, PostgreSQL, the sink, the other services.
        assert len(running) >= 9 and run.left_behind() == []
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
