"""`pearls-infra up` as the README describes it (issue 12).

While it runs, ``<workdir>/env`` holds the Kafka and database addresses as
``export`` lines a shell can source; when it stops, the throwaway servers' data
is gone (their logs stay) and so is the env file with its dead addresses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pearls_localinfra._proc import repo_root
from pearls_localinfra.cli import SERVICES, write_env_file

SERVICE_DSNS = [f"PEARLS_{name.upper()}_DATABASE_URL" for name in SERVICES]


def _sourced(path: Path, names: list[str]) -> dict[str, str]:
    script = f"source {path} && " + " && ".join(f'printf "%s\\0" "${name}"' for name in names)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return dict(zip(names, done.stdout.split("\0")[:-1], strict=True))


def test_the_env_file_is_sourceable_whatever_the_values(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "PEARLS_X": "a b'c\"$HOME;`x`"}
    path = tmp_path / "env"
    exports = write_env_file(path, env)
    assert path.read_text() == exports
    assert _sourced(path, list(env)) == env
    assert [p.name for p in tmp_path.iterdir()] == ["env"]  # no partial file left


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Under the checkout, not pytest's tmp dir: PostgreSQL runs as an unprivileged user
    # when the tests run as root, and must reach its data directory.
    path = repo_root() / "var" / f"infra-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
def test_up_writes_the_addresses_and_throws_everything_away_at_stop(workdir: Path) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "pearls_localinfra.cli", "up", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        env_file = workdir / "env"
        deadline = time.monotonic() + 180
        while not env_file.exists():
            assert up.poll() is None, up.communicate()[0]
            assert time.monotonic() < deadline, "no env file within 3 minutes"
            time.sleep(0.3)
        names = ["KAFKA_BOOTSTRAP_SERVERS", "PEARLS_TEST_POSTGRES_DSN", *SERVICE_DSNS]
        values = _sourced(env_file, names)
        assert values["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
        for name in SERVICE_DSNS:
            assert values[name].startswith("postgresql://"), values
        assert (workdir / "postgres" / "data").is_dir()
        assert (workdir / "kafka" / "node-1" / "data").is_dir()
    finally:
        up.send_signal(signal.SIGTERM)
        output = up.communicate(timeout=90)[0]
    assert up.returncode == 0, output
    assert not env_file.exists(), "the env file outlives the servers it points at"
    assert not (workdir / "postgres" / "data").exists(), "database files stay behind"
    assert not (workdir / "kafka" / "node-1" / "data").exists(), "Kafka's data stays behind"
    assert (workdir / "postgres" / "postgres.log").is_file()  # logs stay for reading
    assert (workdir / "kafka" / "node-1" / "server.log").is_file()
