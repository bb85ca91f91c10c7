"""deploy/Dockerfile: multi-stage, non-root, one service per build argument, built
from the lockfile. Without a Docker engine here, the build stage's install step is
run as it is written on a copy of the build context, and the result is checked."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import ROOT, SERVICES

pytestmark = pytest.mark.deploy

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    found: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_two_stages_and_a_non_root_runtime() -> None:
    build, runtime = stages()
    assert build[0].endswith(" AS build")
    assert "ARG SERVICE" in build and "ARG SERVICE" in runtime
    assert any(ln.startswith("COPY --from=build /app/venv") for ln in runtime)
    [user] = [ln for ln in runtime if ln.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    assert not any("uv" in ln.split() for ln in runtime if ln.startswith("RUN ")), "no uv at run"
    [entrypoint] = [ln for ln in runtime if ln.startswith("ENTRYPOINT ")]
    assert 'pearls-\\"$SERVICE\\"' in entrypoint


def ignored_names() -> set[str]:
    """The .dockerignore patterns that name a file or folder anywhere (``**/x``) or at
    the top; enough for this context, which has no negations."""
    names = set()
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "negations are not modelled here"
            names.add(line.removeprefix("**/"))
    return names


def build_context(dest: Path) -> None:
    ignored = ignored_names()
    build, _ = stages()
    for line in build:
        if line.startswith("COPY "):
            *sources, _target = line.split()[1:]
            for source in sources:
                if source in ignored:
                    pytest.fail(f".dockerignore drops {source}, which the Dockerfile copies")
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(
                        src,
                        dest / source,
                        ignore=lambda folder, names: [
                            n
                            for n in names
                            if n in ignored
                            or f"{Path(folder).relative_to(ROOT)}/{n}" in ignored
                            or n.endswith(".pyc")
                        ],
                    )
                else:
                    shutil.copy2(src, dest / source)


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not os.access(found, os.X_OK):
        pytest.fail("uv is missing: `make setup` installs it")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_installs_the_service_from_the_lock(service: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    build_context(context)
    build, _ = stages()
    [sync] = [ln for ln in build if ln.startswith("RUN uv sync")]
    command = shlex.split(sync.removeprefix("RUN ").split("&&")[0].replace("${SERVICE}", service))
    venv = tmp_path / "venv"
    python = subprocess.run(
        ["bash", str(ROOT / "deploy" / "python.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": python,
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [uv(), *command[1:]], cwd=context, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (venv / "bin" / f"pearls-{service}").is_file()
    # Only this service and the shared library: no other service, no dev tools.
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name for p in site.glob("pearls_*")} - {
        p.name for p in site.glob("pearls_*.dist-info")
    }
    assert {n.split(".")[0] for n in installed} == {f"pearls_{service}", "pearls_shared"}
    assert not list(site.glob("pytest*"))
    # The prepare job's script finds all it imports in that environment alone.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import prepare;"
        " import aiokafka.errors, pearls_shared.runtime, pearls_shared.topics;"
        " prepare.service_settings(sys.argv[2]); print(len(prepare.topics()))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PEARLS_", "KAFKA_"))}
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, str(ROOT / "deploy"), service],
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "8"
    assert (ROOT / "services" / service / "migrations").is_dir()
