"""`make bench` at smoke size: the harness runs end to end and writes every section.

No timing is asserted: on a shared machine the numbers mean nothing at this size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pearls_localinfra.pgserver import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("kafka_limit", "consumer", "relay", "end_to_end", "matching")


def test_quick_bench_writes_json_markdown_and_plot_with_every_section(
    tmp_path: Path, kafka_bootstrap_servers: str, postgres_server: PostgresServer
) -> None:
    env = {
        **os.environ,
        # Sections (1)-(3) on the test session's broker and server; (4) starts its own system.
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "PEARLS_TEST_POSTGRES_DSN": postgres_server.superuser_dsn,
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(SECTIONS) <= set(results)
    assert results["quick"] is True
    assert results["consumer"]["batched"]["msgs_per_s"] > 0
    assert results["consumer"]["batched_many"]["msgs_per_s"] > 0
    assert results["consumer"]["per_message"]["msgs_per_s"] > 0
    assert results["relay"]["lag"]["p99_ms"] is not None
    e2e = results["end_to_end"]
    assert e2e["steps"] and e2e["half_load"]["receipts"] == e2e["half_load"]["accepted"] > 0
    assert {"applications", "notifications", "kafka"} <= set(e2e["resources_at_half_load"])
    table = (tmp_path / "results.md").read_text()
    for row in ("| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 5 |"):
        assert row in table
    assert "Sections not run" not in table
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
