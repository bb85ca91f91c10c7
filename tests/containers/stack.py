"""The compose system, driven from tests: `docker compose` on the repository's
docker-compose.yml under a project name of its own, every published port a free one on
127.0.0.1, and the local images (deploy/images/images.env) unless
``PEARLS_TEST_OFFICIAL_IMAGES=1`` asks for the official ones.

Mail is read back from Mailpit's HTTP API (``Mailpit``); events from Kafka's EXTERNAL
listener; each database, for the fault campaign, through a port published for the
tests only (``compose.faults.yml``), never on a fixed port.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from pearls_localinfra._proc import free_ports

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
FAULTS_FILE = Path(__file__).with_name("compose.faults.yml")
IMAGES_ENV = ROOT / "deploy" / "images" / "images.env"
SERVICES = ("applications", "mentoring", "awards", "notifications")
COORDINATOR_TOKEN = "CHANGE-ME-coordinator-token"  # docker-compose.yml's development token
# The services' databases as compose names them: service -> (user, password, database).
DB_CREDENTIALS = {s: (s, f"CHANGE-ME-{s}-db", s) for s in SERVICES}


class ComposeError(RuntimeError):
    """A compose command failed; the message holds its output."""


def image_env() -> dict[str, str]:
    """The image variables compose reads: the local images, or none (official ones)."""
    if os.environ.get("PEARLS_TEST_OFFICIAL_IMAGES") == "1":
        return {}
    found = {}
    for line in IMAGES_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            found[name.strip()] = value.strip()
    return found


@dataclass
class ComposeStack:
    """One compose project: ``up``, then the addresses, faults and ``down``."""

    purpose: str
    env: dict[str, str] = field(default_factory=dict)  # more variables for compose
    extra_files: tuple[Path, ...] = ()  # compose files laid over docker-compose.yml
    project: str = ""
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.project = self.project or f"pearls-{self.purpose}-{uuid.uuid4().hex[:6]}"
        names = [*(f"PEARLS_{s.upper()}_PORT" for s in SERVICES), "KAFKA_PORT", "MAILPIT_PORT"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))

    # -- running compose -----------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(image_env())
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update(self.env)
        # The engine's own builder: works without BuildKit and without any registry.
        env["DOCKER_BUILDKIT"] = "0"
        return env

    def compose(
        self, *args: str, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(COMPOSE_FILE)]
        for extra in self.extra_files:
            files += ["-f", str(extra)]
        cmd = ["docker", "compose", *files, "-p", self.project, *args]
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise ComposeError(
                f"$ {' '.join(cmd)}\nexit {done.returncode}\n{done.stdout[-3000:]}"
                f"\n{done.stderr[-5000:]}"
            )
        return done

    def up(self, timeout: float = 600.0) -> None:
        """Build what is missing, start everything, wait until every service is healthy."""
        try:
            self.compose("up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=timeout)
        except ComposeError as exc:
            states = self.compose("ps", "-a", check=False).stdout
            logs = self.compose("logs", "--tail", "30", check=False).stdout[-6000:]
            raise ComposeError(f"{exc}\n{states}\n{logs}") from None

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "30", check=False)

    # -- where things are ----------------------------------------------------------------

    def url(self, service: str) -> str:
        if service == "mailpit":
            return f"http://127.0.0.1:{self.ports['MAILPIT_PORT']}"
        return f"http://127.0.0.1:{self.ports[f'PEARLS_{service.upper()}_PORT']}"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.ports['KAFKA_PORT']}"

    def api_urls(self) -> dict[str, str]:
        return {s: self.url(s) for s in SERVICES}

    def dsn(self, service: str) -> str:
        """The service's database through its test-only published port (FAULTS_FILE);
        asked anew each time: a restarted database may have another one."""
        out = self.compose("port", f"{service}-db", "5432").stdout.strip()
        user, password, database = DB_CREDENTIALS[service]
        return f"postgresql://{user}:{password}@{out}/{database}"

    def container(self, service: str) -> str:
        found = self.compose("ps", "-a", "-q", service).stdout.split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def inspect(self, service: str) -> dict[str, Any]:
        out = docker("inspect", self.container(service))
        [found] = json.loads(out)
        return dict(found)

    def network(self, name: str) -> str:
        return f"{self.project}_{name}"

    def logs(self, service: str, since: str | None = None) -> str:
        args = ["logs", "--no-color", "--no-log-prefix"]
        if since is not None:
            args += ["--since", since]
        done = self.compose(*args, service)
        return done.stdout + done.stderr

    # -- faults and lifecycle ------------------------------------------------------------

    def stop(self, service: str) -> None:
        """SIGTERM, as `docker compose stop` sends it, within the grace period."""
        self.compose("stop", service)

    def start(self, service: str) -> None:
        self.compose("start", service)

    def kill_process(self, service: str) -> None:
        """SIGKILL the container's main process from the host: to the engine this is a
        crash, so the restart policy brings the container back (``docker kill`` counts
        as a manual stop, which the policy leaves stopped)."""
        pid = int(self.inspect(service)["State"]["Pid"])
        assert pid > 0, f"{service} is not running"
        os.kill(pid, signal.SIGKILL)

    def docker_kill(self, service: str) -> None:
        docker("kill", self.container(service))

    def restart(self, service: str) -> None:
        self.compose("restart", service)

    def disconnect(self, service: str, network: str) -> None:
        docker("network", "disconnect", self.network(network), self.container(service))

    def connect(self, service: str, network: str) -> None:
        # Back under its service name, as compose attached it.
        docker(
            "network", "connect", "--alias", service, self.network(network), self.container(service)
        )

    def state(self, service: str) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect(service)["State"]
        return state

    def wait_healthy(self, service: str, within: float = 180.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = self.state(service)
            health = (state.get("Health") or {}).get("Status")
            if state.get("Running") and health in ("healthy", None):
                return
            time.sleep(1.0)
        raise ComposeError(f"{service} not healthy within {within:.0f} s: {self.state(service)}")


def docker(*args: str, timeout: float = 120.0) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise ComposeError(f"$ docker {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done.stdout


def engine_problem() -> str | None:
    """Why the container tests cannot run here, or None."""
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except FileNotFoundError:
        return "the `docker` command is not installed"
    if info.returncode != 0:
        return f"no Docker engine answers ({info.stderr.strip()[:300]})"
    compose = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if compose.returncode != 0:
        return "the Compose plugin (`docker compose`) is missing"
    return None


class Mailpit:
    """Every message Mailpit holds, through its HTTP API; each one fetched once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._seen: dict[str, EmailMessage] = {}

    async def messages(self) -> list[EmailMessage]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30.0) as client:
            ids: list[str] = []
            start = 0
            while True:
                page = (
                    await client.get("/api/v1/messages", params={"start": start, "limit": 500})
                ).json()
                ids += [m["ID"] for m in page["messages"]]
                start += len(page["messages"])
                if not page["messages"] or start >= page["messages_count"]:
                    break
            for mid in ids:
                if mid not in self._seen:
                    raw = await client.get(f"/api/v1/message/{mid}/raw")
                    raw.raise_for_status()
                    self._seen[mid] = email.message_from_bytes(
                        raw.content, policy=email.policy.default
                    )  # type: ignore[assignment]
        # The API lists the newest first.
        return [self._seen[mid] for mid in reversed(ids)]
