"""The service images as deploy/Dockerfile builds them on this machine (from the local
Python image), looked into: only the service and the shared library installed, no
build tools or caches in the runtime stage, the migrations inside the package, an
interpreter with the CVE-2024-6923 fix, the prepare job's imports all there. A broken
Dockerfile or compose file fails, with the engine's or compose's own message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.containers.stack import COMPOSE_FILE, ROOT, SERVICES, ComposeStack, image_env

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.timeout(900)]

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def build(
    service: str, dockerfile: Path = DOCKERFILE, tag: str = ""
) -> subprocess.CompletedProcess[str]:
    python = image_env().get("PYTHON_IMAGE", "python:3.11-slim-bookworm")
    return subprocess.run(
        [
            "docker", "build", "-q", "-f", str(dockerfile),
            "--build-arg", f"SERVICE={service}", "--build-arg", f"PYTHON_IMAGE={python}",
            "-t", tag or f"pearls-{service}:local", ".",
        ],
        cwd=ROOT, env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def in_image(service: str, script: str) -> str:
    done = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--entrypoint", "sh",
         f"pearls-{service}:local", "-c", script],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, (service, script, done.stderr)
    return done.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_holds_the_service_and_nothing_else(docker_engine: None, service: str) -> None:
    done = build(service)
    assert done.returncode == 0, done.stdout + done.stderr
    site = "/app/venv/lib/python3.11/site-packages"
    listed = in_image(service, f"ls {site}; echo ---; id -u; ls /app").split("---")
    packages, (uid, *app) = listed[0].split(), listed[1].split()
    ours = {p.split("-")[0] for p in packages if p.startswith("pearls_") and "dist-info" in p}
    assert ours == {f"pearls_{service}", "pearls_shared"}, packages
    assert not [p for p in packages if p.startswith(("pytest", "hypothesis", "mypy", "ruff"))]
    assert uid == "10001" and set(app) == {"venv", "prepare.py"}, (uid, app)
    # No compilers, no build caches, no sources: the runtime stage has only what runs.
    absent = in_image(
        service,
        "for p in /usr/bin/gcc /usr/bin/cc /root/.cache /src /app/migrations"
        " /opt/python/bin/uv; do [ -e $p ] && echo $p; done; true",
    )
    assert absent == "", absent
    migrations = in_image(service, f"ls {site}/pearls_{service}/migrations").split()
    local = sorted(p.name for p in (ROOT / "services" / service / "src" / f"pearls_{service}"
                                    / "migrations").glob("*.sql"))  # fmt: skip
    assert migrations == local
    # The interpreter has the header fix; the prepare job finds everything it imports.
    probe = in_image(
        service,
        "cd /app && python -c 'import email.errors; email.errors.HeaderWriteError;"
        " import prepare, aiokafka.errors, pearls_shared.runtime;"
        f' prepare.service_settings("{service}"); print(len(prepare.topics()))\'',
    )
    assert probe.strip() == "8"


def test_a_broken_dockerfile_fails_the_build(docker_engine: None, tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("RUN uv sync", "RUN uv synk", 1))
    done = build("awards", broken, tag="pearls-broken:never")
    assert done.returncode != 0
    assert "synk" in done.stdout + done.stderr


def test_a_broken_compose_file_fails(docker_engine: None, tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    for old, new, said in (
        ("kafka: { condition: service_healthy }", "kafak: { condition: service_healthy }", "kafak"),
        ("    healthcheck:\n", "    healthchek:\n", "healthchek"),
    ):
        broken = tmp_path / "docker-compose.yml"
        broken.write_text(text.replace(old, new, 1))
        stack = ComposeStack("broken")
        done = subprocess.run(
            ["docker", "compose", "-f", str(broken), "-p", stack.project, "config", "-q"],
            cwd=ROOT, env=stack.environment(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode != 0 and said in done.stderr, (said, done.stderr)
