"""The whole system as `docker compose up --build --wait` runs it: built from
deploy/Dockerfile and the local images, one city driven from its application to the
award through the published ports only, then what an operator relies on: every
service ready and measured, non-root on a read-only root filesystem, its migrations
found in its own package, and a clean stop on SIGTERM (outbox drained, offsets
committed)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from pearls_demo.scenario import CITIES, Demo, apply, call_request
from pearls_shared.testing import read_topic
from pearls_shared.topics import APPLICATIONS
from tests.containers.stack import COORDINATOR_TOKEN, SERVICES, ComposeStack, Mailpit
from tests.e2e.journey import connect, one_city_to_the_award

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.timeout(900)]

# The consumers each service runs (their names in logs and metrics).
CONSUMERS = {
    "applications": (),
    "mentoring": ("mentoring",),
    "awards": ("awards",),
    "notifications": ("pearls-notifications",),
}


@pytest.fixture(scope="module")
def stack(docker_engine: None) -> Iterator[ComposeStack]:
    stack = ComposeStack("e2e")
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


async def test_one_city_from_its_application_to_the_award_in_containers(
    stack: ComposeStack,
) -> None:
    async with connect(
        stack.api_urls(),
        COORDINATOR_TOKEN,
        showcase=f"{stack.url('awards')}/showcase",
        bootstrap=stack.bootstrap_servers,
    ) as apis:
        await one_city_to_the_award(apis, Mailpit(stack.url("mailpit")).messages)


def test_every_service_is_ready_and_serves_its_metrics(stack: ComposeStack) -> None:
    for service in SERVICES:
        ready = httpx.get(f"{stack.url(service)}/health/ready", timeout=10)
        assert ready.status_code == 200, (service, ready.text)
        metrics = httpx.get(f"{stack.url(service)}/metrics", timeout=10)
        assert metrics.status_code == 200, service
        assert metrics.headers["content-type"].startswith("text/plain"), service
        assert f'pearls_outbox_pending{{service="{service}"}}' in metrics.text, service
    assert httpx.get(f"{stack.url('mailpit')}/readyz", timeout=10).status_code == 200


def test_services_run_as_non_root_on_a_read_only_root_filesystem(stack: ComposeStack) -> None:
    for service in SERVICES:
        config = stack.inspect(service)
        assert config["Config"]["User"] == "10001:10001", service
        assert config["HostConfig"]["ReadonlyRootfs"] is True, service
        probe = stack.compose(
            "exec",
            "-T",
            service,
            "sh",
            "-c",
            "id -u; touch /app/probe; touch /tmp/probe",
            check=False,
        )
        assert probe.stdout.split()[0] == "10001", (service, probe.stdout)
        assert "Read-only file system" in probe.stderr, (service, probe.stderr)
        assert probe.returncode == 0  # the last command: /tmp is writable (a tmpfs)


def test_migrations_come_from_the_service_package(stack: ComposeStack) -> None:
    for service in SERVICES:
        env = stack.inspect(service)["Config"]["Env"]
        assert not [v for v in env if "MIGRATIONS_DIR" in v], service
        folder, *packaged = stack.compose(
            "run",
            "--rm",
            "--no-deps",
            "--entrypoint",
            "python",
            service,
            "-c",
            f"import pearls_{service}.config as c; print(c.MIGRATIONS_DIR,"
            " *sorted(p.name for p in c.MIGRATIONS_DIR.glob('*.sql')))",
        ).stdout.split()
        assert folder.endswith(f"/site-packages/pearls_{service}/migrations"), folder
        assert packaged, service
        # The one-shot job applied them, on an empty database, from there.
        [applied] = re.findall(r"migrations applied now: (.*)", stack.logs(f"{service}-prepare"))
        mine = [n for n in applied.split(", ") if n.startswith("service/")]
        assert mine == [f"service/{n}" for n in packaged], (service, applied)


def stop_cleanly(stack: ComposeStack, service: str) -> str:
    """SIGTERM the service; its exit code is 0 and its last run's log says how it ended."""
    started_at = stack.state(service)["StartedAt"]
    stack.stop(service)
    state = stack.state(service)
    assert state["Status"] == "exited" and state["ExitCode"] == 0, (service, state)
    assert not state["OOMKilled"]
    return stack.logs(service, since=started_at)


async def test_sigterm_drains_the_outbox_and_commits_the_offsets(stack: ComposeStack) -> None:
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=stack.url("applications"), timeout=30) as client:
        app = Demo(client, COORDINATOR_TOKEN, lambda _: None)
        call = await app.request(
            "POST",
            "/calls",
            expect=201,
            headers=app.coordinator,
            json=call_request(datetime.now(UTC), places=20),
        )
        # A burst of submissions, and SIGTERM right after the last answer: what the
        # service accepted must be on the bus while it is down.
        cities = [
            dataclasses.replace(city, name=f"{city.name} {run}", email=f"c{i}.{run}@stop.example")
            for i, city in enumerate(CITIES[:6])
        ]
        receipts = await asyncio.gather(*(apply(app, call["call_id"], c, {}) for c in cities))
    ids = {r["application_id"] for r in receipts}
    logs = stop_cleanly(stack, "applications")
    assert re.search(r'"event": "relay_drained".*"pending": 0|"pending": 0.*"relay_drained"', logs)
    on_bus = {
        r.key.decode() for r in await read_topic(stack.bootstrap_servers, APPLICATIONS) if r.key
    }
    assert ids <= on_bus, f"accepted but not published before the stop: {ids - on_bus}"
    stack.start("applications")
    stack.wait_healthy("applications")

    # Every service stops cleanly: each consumer's offsets land before it leaves, the
    # relay reports nothing pending; restarted, no consumer is given a record it had
    # already handled (its duplicate counter stays at zero).
    for service in SERVICES:
        logs = stop_cleanly(stack, service)
        for consumer in CONSUMERS[service]:
            assert f'"consumer": "{consumer}", "event": "consumer_drained"' in logs, (
                service,
                logs[-3000:],
            )
        assert '"event": "relay_drained"' in logs and '"event": "service_stopped"' in logs
        stack.start(service)
        stack.wait_healthy(service)
    await asyncio.sleep(5)  # the restarted consumers join and read from their offsets
    for service in SERVICES:
        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"{stack.url(service)}/metrics")).text
        duplicates = re.findall(r"^pearls_inbox_duplicates_total\{.*\} (\S+)$", metrics, re.M)
        assert all(float(n) == 0 for n in duplicates), (service, duplicates)
