"""The container tests need a Docker engine with the Compose plugin and the local
images; `make test` provides all three (deploy/docker.sh run). Without them the tests
fail, never skip, and say what to do."""

from __future__ import annotations

import subprocess

import pytest

from tests.containers.stack import ROOT, engine_problem, image_env


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "containers: runs the system in Docker containers (docker compose)"
    )


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine and Compose answer, and the local images are built (cached)."""
    if problem := engine_problem():
        pytest.fail(
            f"The container tests need Docker: {problem}. `make test` starts an engine and"
            " builds what it needs (bash deploy/docker.sh run ...); or start dockerd and run"
            " `bash deploy/docker.sh install` for the Compose plugin.",
            pytrace=False,
        )
    if image_env():
        done = subprocess.run(
            ["bash", "deploy/images/build.sh"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if done.returncode != 0:
            pytest.fail(
                f"building the local images failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}",
                pytrace=False,
            )
