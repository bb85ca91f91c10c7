"""Helpers of the `pearls` tests: run `pearls` as operators do (a real process).

Each call runs the console script in a subprocess (off the event loop, so a
service under test keeps consuming meanwhile) with wide tables (COLUMNS).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PEARLS = str(Path(sys.executable).parent / "pearls")


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def clean_env(**overrides: str) -> dict[str, str]:
    """The process environment without Pearls/Kafka settings, plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PEARLS_", "KAFKA_")) or k.startswith("PEARLS_TEST_")
    }
    env.update({"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}, **overrides)
    return env


def run_pearls(*args: str, env: dict[str, str]) -> Result:
    done = subprocess.run(
        [PEARLS, *args], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


async def pearls(*args: str, env: dict[str, str]) -> Result:
    return await asyncio.to_thread(run_pearls, *args, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
