"""The whole system as `make run-system` starts it, one city from its application to the award.

The four services run as real processes on a real Kafka and PostgreSQL, with
the SMTP sink, started by `make run-system` (pearls-demo --no-demo) once for
this module. One city is driven through the public HTTP APIs only, with the
demo's own request helpers; then every event of its run is read back from the
Pearls topics, decoded as a CloudEvent and checked against the contract's
models, every e-mail is read back from the sink, and the city is looked up on
the public showcase. The same run then shows that a second `make run` is
refused while it runs and that Ctrl-C stops everything, leaving no process.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import httpx
import pytest

from pearls_demo.system import COORDINATOR_TOKEN
from tests.e2e.journey import Apis, connect, one_city_to_the_award
from tests.e2e.mail import read_mail
from tests.e2e.running import ROOT, Run, new_workdir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system() -> Iterator[Run]:
    """`make run-system`, started once for this module; stopped (and checked) at its end."""
    run = Run.make(new_workdir(), "run-system")
    try:
        run.summary()  # printed once everything is ready
        yield run
    finally:
        run.close()
        shutil.rmtree(run.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
async def apis(system: Run) -> AsyncIterator[Apis]:
    urls = system.summary()
    found = {
        name: urls[f"{name} API"].removesuffix("/docs")
        for name in ("applications", "mentoring", "awards")
    }
    async with connect(
        found, COORDINATOR_TOKEN, showcase=urls["showcase"], bootstrap=urls["events (Kafka)"]
    ) as apis:
        yield apis


async def test_one_city_from_its_application_to_the_award(system: Run, apis: Apis) -> None:
    async def mails() -> list[EmailMessage]:
        return read_mail(system.workdir / "mail")

    await one_city_to_the_award(apis, mails)


def test_a_second_make_run_beside_the_running_one_says_so(system: Run) -> None:
    running = system.processes()
    second = subprocess.run(
        ["make", "run", f"RUN_ARGS=--workdir {system.workdir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode != 0
    holder = re.search(r"pearls-demo is already running \(pid (\d+)\)", second.stderr)
    assert holder, second.stdout + second.stderr
    assert int(holder.group(1)) in running  # the first run's pearls-demo
    assert str(system.workdir) in second.stderr and "Ctrl-C" in second.stderr
    assert "RUN_ARGS='--workdir DIR'" in second.stderr  # how to run another one with make
    # The first run is untouched: still every process, its mail page still answers.
    assert set(system.processes()) == set(running)
    assert httpx.get(system.summary()["captured mail"], timeout=10).status_code == 200


def test_ctrl_c_stops_everything_and_leaves_no_process(system: Run) -> None:
    running = system.processes()
    names = " ".join(p.args for p in running.values())
    # make, uv, pearls-demo, Kafka's JVM, PostgreSQL, the SMTP sink and the four services.
    for part in ("make", "pearls-demo", "java", "postgres", "devsmtp", "pearls-applications"):
        assert part in names, names
    for service in ("mentoring", "awards", "notifications"):
        assert f"pearls-{service}" in names, names
    system.ctrl_c()
    # pearls-demo stops cleanly; make, which got the Ctrl-C too, then ends by it as usual.
    assert system.wait() in (0, -signal.SIGINT), system.output[-3000:]
    assert system.left_behind() == []
    assert system.lines[-2:] == ["stopping ...", "stopped."], system.output[-3000:]
    # Thrown away as the README says: no database or Kafka data stays behind, logs do.
    assert not (system.workdir / "postgres" / "data").exists()
    assert not list(system.workdir.glob("kafka/*/data"))
    assert (system.workdir / "logs" / "mentoring.log").is_file()
