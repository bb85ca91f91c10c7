"""deploy/Dockerfile's shape: multi-stage, non-root, one service per build argument.
The images themselves are built and looked into by tests/containers/test_images.py."""

from __future__ import annotations

import re

import pytest

from tests.deploy.support import ROOT

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
